"""Property-based hostile input for the config loader and the MQTT topic validation.

* Any TOML document (random sections, keys and values of every TOML type, also raw
  garbage) and any set of ``EDGE_POSE_*`` variables either loads or raises
  :class:`ConfigError` naming the key, the variable or the file; never another exception.
* Whatever node id and base topic are accepted, every topic the node publishes to or
  subscribes to stays under its base: no wildcard, no NUL, no ``.``/``..`` level, no
  ``$`` prefix, no empty level, exactly one level for the node id.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import SECTIONS, ConfigError, load_config
from edge.publish import MqttSettings, Topics, validate_base_topic, validate_node_id
from edge.publish.discovery import discovery_messages, status_topic

_KNOWN_KEYS = sorted({k for model in SECTIONS.values() for k in model.model_fields})
_texts = st.text(max_size=40)
_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    _texts,
    st.sampled_from(["", "0", "-1", "1e309", "mqtt://x", "mqtts://h:99999", "/dev/video0"]),
)
_values = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=3),
    st.dictionaries(st.sampled_from(_KNOWN_KEYS), _scalars, max_size=2),
)
_keys = st.one_of(st.sampled_from([*_KNOWN_KEYS, "password", "Password"]), _texts)
_sections = st.one_of(st.sampled_from([*SECTIONS, "extra"]), _texts)
_documents = st.dictionaries(
    _sections,
    st.one_of(st.dictionaries(_keys, _values, max_size=4), _scalars),
    max_size=4,
)


def _toml_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)  # a quoted key: any text is allowed


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    raise TypeError(value)


def to_toml(document: dict[str, Any]) -> str:
    """A TOML text for ``document`` (scalars first, then one table per section)."""
    lines = [
        f"{_toml_key(k)} = {_toml_value(v)}" for k, v in document.items() if not isinstance(v, dict)
    ]
    for section, table in document.items():
        if isinstance(table, dict):
            lines.append(f"[{_toml_key(section)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _names_something(message: str, document: dict[str, Any], path: Path) -> bool:
    if str(path) in message:
        return True
    for section, table in document.items():
        if f"{section}." in message or repr(section) in message or f"[{section}]" in message:
            return True
        if isinstance(table, dict) and any(f"{section}.{k}" in message for k in table):
            return True
    return any(f"{s}." in message for s in SECTIONS)


_settings = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(_documents)
def test_any_toml_document_loads_or_names_the_key(tmp_path: Path, document: dict[str, Any]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(to_toml(document), encoding="utf-8")
    try:
        loaded = load_config(path, env={})
    except ConfigError as exc:
        message = str(exc)
        assert message.strip()
        assert _names_something(message, document, path), message
    else:
        # Accepted: then every value it holds passed validation and the topics are safe.
        mqtt = loaded.config.mqtt
        validate_node_id(mqtt.node_id)
        validate_base_topic(f"{mqtt.base_topic}/{mqtt.node_id}")


@_settings
@given(st.binary(max_size=200))
def test_garbage_bytes_as_a_config_file_are_a_config_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(raw)
    try:
        load_config(path, env={})
    except ConfigError as exc:
        assert str(path) in str(exc) or "." in str(exc)


_env_names = st.tuples(
    st.one_of(st.sampled_from(list(SECTIONS)), st.text(string.ascii_letters + "_", max_size=8)),
    st.one_of(st.sampled_from(_KNOWN_KEYS), st.text(string.ascii_letters + "_", max_size=8)),
).map(lambda sk: f"EDGE_POSE_{sk[0].upper()}__{sk[1].upper()}")
_env_values = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
    st.sampled_from(["1", "0", "true", "nan", "inf", "-1", '"x"', "[1,2]", "{a=1}", "1979-05-27"]),
)


@_settings
@given(st.dictionaries(_env_names, _env_values, max_size=4))
def test_any_environment_loads_or_names_the_variable(env: dict[str, str]) -> None:
    try:
        load_config(None, env=env, read_secrets=False)
    except ConfigError as exc:
        message = str(exc)
        assert any(name in message for name in env), message


@pytest.mark.parametrize("section", ["mqtt", "source", "models"])
def test_a_section_that_is_not_a_table_is_an_error_even_with_env_overrides(
    tmp_path: Path, section: str
) -> None:
    """`mqtt = 5` in the file must not vanish because an env variable sets mqtt.<key>."""
    path = tmp_path / "config.toml"
    path.write_text(f"{section} = 5\n", encoding="utf-8")
    key = sorted(SECTIONS[section].model_fields)[0]
    default = SECTIONS[section].model_fields[key].default
    env = {f"EDGE_POSE_{section.upper()}__{key.upper()}": _toml_value(default)}
    with pytest.raises(ConfigError, match=section):
        load_config(path, env=env)


# --- topics ------------------------------------------------------------------------------------

_node_ids = st.text(min_size=1, max_size=70)
_base_topics = st.text(min_size=1, max_size=60)


def _safe_topic(topic: str) -> None:
    assert topic and not topic.startswith(("$", "/")) and not topic.endswith("/")
    assert not set(topic) & {"+", "#", "\x00"}
    levels = topic.split("/")
    assert all(level and level.strip() not in (".", "..") for level in levels), topic
    assert not any(ord(c) < 0x20 for c in topic)


@settings(max_examples=200, deadline=None)
@given(_node_ids, _base_topics)
def test_accepted_ids_and_bases_never_escape_their_base(node_id: str, base: str) -> None:
    try:
        validate_node_id(node_id)
        validate_base_topic(base)
        s = MqttSettings(node_id=node_id, base_topic=f"{base}/{node_id}")
    except ValueError:
        return
    node_base = f"{base}/{node_id}"
    assert len(node_base.split("/")) == len(base.split("/")) + 1  # the id is one level
    topics = Topics(s.base_topic)
    for name in ("pose", "presence", "count", "availability", "stats", "mask"):
        topic = getattr(topics, name)
        assert topic == f"{node_base}/{name}"
        _safe_topic(topic)
    for topic, payload in discovery_messages(s):
        _safe_topic(topic)
        assert topic.startswith(f"{s.discovery_prefix}/")
        assert len(topic.split("/")) == len(s.discovery_prefix.split("/")) + 4
        config = json.loads(payload)
        for key, value in config.items():
            if key.endswith("_topic") or key == "topic":
                _safe_topic(value)
                assert value.startswith(f"{node_base}/")
    _safe_topic(status_topic(s))


@settings(max_examples=200, deadline=None)
@given(_node_ids)
def test_config_node_ids_are_a_subset_of_what_the_publisher_accepts(node_id: str) -> None:
    try:
        cfg = load_config(None, env={}, overrides={"mqtt": {"node_id": node_id}}).config
    except ConfigError as exc:
        assert "mqtt.node_id" in str(exc)
        return
    assert validate_node_id(cfg.mqtt.node_id) == node_id
    assert set(node_id) <= set(string.ascii_letters + string.digits + "_-")


@pytest.mark.parametrize(
    "bad",
    ["+", "#", "a/b", "..", ".", "\x00", "a\x00b", "$SYS", " x", "x\n", "a+", "#b", ""],
)
def test_hostile_node_ids_are_rejected_everywhere(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_node_id(bad)
    with pytest.raises(ConfigError, match=r"mqtt\.node_id"):
        load_config(None, env={}, overrides={"mqtt": {"node_id": bad}})


@pytest.mark.parametrize(
    "bad", ["a/../b", "../x", "a/./b", "a//b", "/a", "a/", "a/+/b", "a/#", "$SYS/x", "a\x00"]
)
def test_hostile_base_topics_are_rejected_everywhere(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_base_topic(bad)
    with pytest.raises(ConfigError, match=r"mqtt\.base_topic"):
        load_config(None, env={}, overrides={"mqtt": {"base_topic": bad}})
