"""The config schema: defaults, file + env + flag precedence, errors naming key and value,
secrets from files and credentials only, the shipped example, and `edge-pose config`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import (
    EX_CONFIG,
    SECTIONS,
    ConfigError,
    EdgeConfig,
    LoadedConfig,
    changed_sections,
    env_overrides,
    example_text,
    load_config,
    to_toml,
)

REPO = Path(__file__).resolve().parent.parent
EDGE_POSE = [sys.executable, "-m", "edge"]


def _write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_mean_sample_clip_and_embedded_loopback_broker() -> None:
    loaded = load_config(None, env={})
    cfg = loaded.config
    assert cfg.source.uri == ""
    assert cfg.mqtt.url == ""
    assert cfg.mqtt.embedded_bind == "127.0.0.1"
    assert cfg.models.precision == "int8"
    assert loaded.mqtt_password is None


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[mqtt]\nurl = "mqtt://a:1883"\nbase_topic = "file"\n[stats]\ninterval_s = 3\n',
    )
    env = {"EDGE_POSE_MQTT__BASE_TOPIC": "env/topic", "EDGE_POSE_SOURCE__FPS": "12.5"}
    loaded = load_config(path, env=env, overrides={"mqtt": {"url": "mqtt://flag:1884"}})
    cfg = loaded.config
    assert cfg.mqtt.url == "mqtt://flag:1884"
    assert cfg.mqtt.base_topic == "env/topic"
    assert cfg.source.fps == 12.5
    assert cfg.stats.interval_s == 3.0
    assert loaded.path == path


def test_env_values_parse_as_toml_scalars() -> None:
    parsed = env_overrides(
        {
            "EDGE_POSE_SOURCE__LOOP": "true",
            "EDGE_POSE_MODELS__THREADS": "2",
            "EDGE_POSE_SOURCE__URI": "/dev/video0",
            "EDGE_POSE_MODELS_DIR": "/not/an/override",
            "HOME": "/root",
        }
    )
    assert parsed == {"source": {"loop": True, "uri": "/dev/video0"}, "models": {"threads": 2}}


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("[source]\nurl = 'x'\n", "source.url", "allowed keys in [source]: uri"),
        ("[camera]\nuri = 'x'\n", "camera", "allowed sections: source"),
        ("[models]\nthreads = 'four'\n", "models.threads", "'four'"),
        ("[models]\nthreads = 0\n", "models.threads", "greater than or equal to 1"),
        ("[mqtt]\nembedded_port = 70000\n", "mqtt.embedded_port", "less than or equal to 65535"),
        ("[models]\ndelegate = 'gpu'\n", "models.delegate", "'cpu' or 'edgetpu'"),
        ("[mqtt]\nurl = 'http://x'\n", "mqtt.url", "mqtt://host:1883"),
        ("[mqtt]\nbase_topic = 'a/#'\n", "mqtt.base_topic", "no wildcards"),
        ("[mqtt]\nnode_id = '../x'\n", "mqtt.node_id", "letters, digits"),
        ("[mqtt]\npassword = 'hunter2'\n", "mqtt.password", "password_file"),
        ("[models]\nprecision = 'fp16'\n", "models.precision", "'mixed'"),
        (
            "[models]\ncomplexity = 1\nprecision = 'mixed'\n",
            "models.precision",
            "only for complexity 0",
        ),
        (
            "[models]\nprecision = 'mixed'\ndelegate = 'edgetpu'\n",
            "models.delegate",
            "fully int8 models only",
        ),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert key in message
    assert fragment in message
    assert str(path) in message
    assert "hunter2" not in message
    assert info.value.exit_status == EX_CONFIG == 78


def test_env_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"EDGE_POSE_MQTT__PORT.*unknown key mqtt\.port"):
        load_config(None, env={"EDGE_POSE_MQTT__PORT": "1883"})
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"EDGE_POSE_STATS__INTERVAL_S": "0.1"})
    assert "stats.interval_s = 0.1" in str(info.value)
    assert "environment variable EDGE_POSE_STATS__INTERVAL_S" in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[source\n"), env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_password_from_file_and_from_credentials(tmp_path: Path) -> None:
    secret = _write(tmp_path, "s3cret-pw\n", "pw")
    path = _write(tmp_path, f'[mqtt]\nusername = "u"\npassword_file = "{secret}"\n')
    loaded = load_config(path, env={})
    assert loaded.mqtt_password is not None
    assert loaded.mqtt_password.get_secret_value() == "s3cret-pw"
    shown = to_toml(loaded)
    assert "s3cret-pw" not in shown
    assert "********" in shown
    assert "s3cret-pw" not in repr(loaded)

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt-password").write_text("from-credential", encoding="utf-8")
    loaded = load_config(
        _write(tmp_path, '[mqtt]\nusername = "u"\n', "c2.toml"),
        env={"CREDENTIALS_DIRECTORY": str(creds)},
    )
    assert loaded.mqtt_password is not None
    assert loaded.mqtt_password.get_secret_value() == "from-credential"


def test_unreadable_credentials_file_names_the_key(tmp_path: Path) -> None:
    missing = tmp_path / "missing-pw"
    path = _write(tmp_path, f'[mqtt]\nusername = "u"\npassword_file = "{missing}"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.password_file = .*missing-pw.*does not exist"):
        load_config(path, env={})
    directory = tmp_path / "a-dir"
    directory.mkdir()
    path = _write(tmp_path, f'[mqtt]\nusername = "u"\npassword_file = "{directory}"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.password_file = .*is a directory"):
        load_config(path, env={})


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to switch the effective uid")
def test_permission_denied_credentials_file_as_another_user(tmp_path: Path) -> None:
    """The real case: a root-only 0600 password file read by the unprivileged daemon."""
    secret = _write(tmp_path, "pw\n", "pw")
    secret.chmod(0o600)
    path = _write(tmp_path, f'[mqtt]\nusername = "u"\npassword_file = "{secret}"\n')
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    os.seteuid(65534)
    try:
        with pytest.raises(ConfigError) as info:
            load_config(None, env={}, overrides=data)
    finally:
        os.seteuid(0)
    assert "mqtt.password_file" in str(info.value)
    assert "not readable" in str(info.value)


def test_embedded_broker_beyond_loopback_needs_a_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.embedded_bind = '0\.0\.0\.0'"):
        load_config(None, env={"EDGE_POSE_MQTT__EMBEDDED_BIND": '"0.0.0.0"'})


def test_example_config_loads_and_lists_every_key(tmp_path: Path) -> None:
    text = example_text()
    loaded = load_config(_write(tmp_path, text), env={})
    assert loaded.config == EdgeConfig()
    for section, model in SECTIONS.items():
        assert f"[{section}]" in text
        for key in model.model_fields:
            assert f"\n{key} = " in text, f"{section}.{key} missing from the example"
            assert model.model_fields[key].description, f"{section}.{key} lacks a description"


def test_changed_sections() -> None:
    a = load_config(None, env={}).config
    b = load_config(None, env={"EDGE_POSE_MQTT__BASE_TOPIC": "other"}).config
    assert changed_sections(a, b) == {"mqtt"}
    assert changed_sections(a, a) == set()


def test_cli_check_and_show(tmp_path: Path) -> None:
    good = _write(tmp_path, '[mqtt]\nbase_topic = "home/pose"\n')
    ok = subprocess.run(
        [*EDGE_POSE, "config", "check", str(good)], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    bad = _write(tmp_path, "[stats]\ninterval_s = -1\n", "bad.toml")
    res = subprocess.run(
        [*EDGE_POSE, "config", "check", str(bad)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 78
    assert "stats.interval_s = -1" in res.stderr
    env = {**os.environ, "EDGE_POSE_MQTT__NODE_ID": "shelf-2"}
    show = subprocess.run(
        [*EDGE_POSE, "config", "show", "--config", str(good)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert show.returncode == 0, show.stderr
    assert 'base_topic = "home/pose"' in show.stdout
    assert 'node_id = "shelf-2"' in show.stdout
    as_json = subprocess.run(
        [*EDGE_POSE, "config", "show", "--json", "--config", str(good)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["mqtt"]["node_id"] == "shelf-2"
    assert data["mqtt"]["password"] is None


# --- property tests: the parser never crashes, only accepts or names a key ---------------

_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=30),
)
_keys = st.sampled_from(
    [k for model in SECTIONS.values() for k in model.model_fields] + ["bogus", "password"]
)
_tables = st.dictionaries(
    st.sampled_from([*SECTIONS, "extra"]),
    st.dictionaries(_keys, _scalars, max_size=4),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(_tables)
def test_property_any_table_is_accepted_or_rejected_with_a_key(
    data: dict[str, dict[str, object]],
) -> None:
    from edge.config import validate

    try:
        cfg = validate(data, "prop")
    except ConfigError as exc:
        message = str(exc)
        assert "prop" in message
        assert any(f"{s}." in message or f"'{s}'" in message for s in data)
    else:
        # What `config show` prints reads back as the same config.
        shown = to_toml(LoadedConfig(cfg, None, None))
        assert validate(tomllib.loads(shown), "shown") == cfg


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_property_topics_cannot_escape_their_base(topic: str) -> None:
    try:
        cfg = load_config(None, env={}, overrides={"mqtt": {"base_topic": topic}}).config
    except ConfigError as exc:
        assert "mqtt.base_topic" in str(exc)
    else:
        levels = cfg.mqtt.base_topic.split("/")
        assert all(level and level not in (".", "..") for level in levels)
        assert not any(c in cfg.mqtt.base_topic for c in "#+\0 ")


_env_names = st.builds(
    lambda section, key: f"EDGE_POSE_{section.upper()}__{key.upper()}",
    st.sampled_from([*SECTIONS, "bogus"]),
    _keys,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_env_names, st.text(max_size=20), max_size=4))
def test_property_env_overrides_never_crash(env: dict[str, str]) -> None:
    """Any EDGE_POSE_* values: a config, or a ConfigError naming a variable it came from."""
    try:
        cfg = load_config(None, env=env, read_secrets=False).config
    except ConfigError as exc:
        message = str(exc)
        dotted = [n.removeprefix("EDGE_POSE_").lower().replace("__", ".") for n in env]
        assert any(n in message for n in env) or any(d in message for d in dotted), message
    else:
        assert isinstance(cfg, EdgeConfig)


def test_show_escapes_strings_so_the_output_reads_back(tmp_path: Path) -> None:
    odd = 'we"ird\\path\nwith\tcontrol\x7f and ünïcode'
    loaded = load_config(None, env={}, overrides={"source": {"uri": odd}})
    shown = to_toml(loaded)
    assert tomllib.loads(shown)["source"]["uri"] == odd
