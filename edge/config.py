"""The one configuration schema of ``edge-pose run``, its loading and overrides.

Precedence, lowest first: the built-in defaults, the TOML file
(``/etc/edge-pose/config.toml`` unless ``--config`` names another), environment
variables ``EDGE_POSE_<SECTION>__<KEY>`` and finally command-line flags. Unknown
keys are rejected. Every error names the key, the value and what is allowed,
and the command exits with :data:`EX_CONFIG` (78), which the systemd unit
excludes from restarts.

Secrets never live in the config itself: the MQTT password is read from
``mqtt.password_file`` or from the systemd credential ``mqtt-password``
(``LoadCredential=``, found in ``$CREDENTIALS_DIRECTORY``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from edge.models import COMPLEXITY_NAMES, MIXED_ROLES

#: sysexits.h EX_CONFIG: the configuration is wrong; restarting will not help.
EX_CONFIG = 78
DEFAULT_CONFIG_PATH = Path("/etc/edge-pose/config.toml")
ENV_PREFIX = "EDGE_POSE_"
#: Name of the systemd credential holding the MQTT password (``LoadCredential=``).
CREDENTIAL_NAME = "mqtt-password"
_SECRET_MASK = "********"
_TOPIC_LEVEL = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")


class ConfigError(Exception):
    """A configuration problem; ``str()`` is a message for the user naming key and value."""

    exit_status = EX_CONFIG


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SourceConfig(_Section):
    uri: str = Field(
        "",
        description=(
            "What to capture: 'picamera2', a V4L2 device (/dev/video0 or 0), an rtsp:// or "
            "http:// URL, a video file or a folder of images. Empty: the sample clip shipped "
            "with edge-pose, looped."
        ),
    )
    width: int = Field(0, ge=0, le=8192, description="Requested frame width in pixels; 0 = native.")
    height: int = Field(
        0, ge=0, le=8192, description="Requested frame height in pixels; 0 = native."
    )
    fps: float = Field(
        0.0,
        ge=0.0,
        le=240.0,
        description="Requested capture rate (frames per second); 0 = the source's own rate.",
    )
    loop: bool = Field(False, description="Files and folders: start again at the end.")
    realtime: bool = Field(
        True,
        description=(
            "Files and folders: deliver frames at the clip's own rate (like a camera) rather "
            "than as fast as they decode."
        ),
    )
    rotation: Literal[0, 90, 180, 270] = Field(
        0, description="Rotate frames clockwise by this many degrees (camera mounted sideways)."
    )
    hflip: bool = Field(False, description="Mirror frames left-right (before rotation).")
    vflip: bool = Field(False, description="Flip frames upside down (before rotation).")
    stall_timeout_s: float = Field(
        5.0,
        gt=0.0,
        le=600.0,
        description="A live source that delivers nothing for this long is reopened (seconds).",
    )
    open_timeout_s: float = Field(
        10.0, gt=0.0, le=600.0, description="How long opening a network stream may take (s)."
    )
    backoff_initial_s: float = Field(
        0.5, gt=0.0, le=60.0, description="First wait before reopening a failed source (s)."
    )
    backoff_max_s: float = Field(
        30.0, gt=0.0, le=3600.0, description="Longest wait between reopen attempts (s)."
    )
    fourcc: str = Field(
        "MJPG",
        description="V4L2 pixel format to ask for (MJPG reaches full rate over USB 2); "
        "empty = the device default.",
    )
    pixel_format: Literal["YUV420", "RGB888", "BGR888"] = Field(
        "YUV420",
        description="picamera2 lores stream format: YUV420 works on every Pi, RGB888/BGR888 "
        "on a Pi 5.",
    )
    main_size: tuple[int, int] = Field(
        (0, 0),
        description="picamera2: also configure a full-size main stream [width, height] for "
        "snapshots; [0, 0] = none.",
    )
    exposure_time_us: int = Field(
        0, ge=0, le=10_000_000, description="picamera2: fixed exposure (us); 0 = auto exposure."
    )
    analogue_gain: float = Field(
        0.0, ge=0.0, le=64.0, description="picamera2: fixed analogue gain; 0 = automatic."
    )

    @field_validator("fourcc")
    @classmethod
    def _check_fourcc(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Z0-9 ]{4}", value):
            raise ValueError("must be 4 upper-case characters such as MJPG or YUYV, or empty")
        return value

    @field_validator("main_size")
    @classmethod
    def _check_main_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value != (0, 0) and not (16 <= value[0] <= 16384 and 16 <= value[1] <= 16384):
            raise ValueError("must be [0, 0] (none) or [width, height] within 16..16384")
        return value


class PipelineConfig(_Section):
    """MediaPipe Pose's own option names and meanings."""

    static_image_mode: bool = Field(
        False, description="Run the person detector on every frame (no tracking)."
    )
    smooth_landmarks: bool = Field(True, description="Filter landmarks across frames.")
    enable_segmentation: bool = Field(False, description="Also produce a segmentation mask.")
    smooth_segmentation: bool = Field(True, description="Filter the mask across frames.")
    min_detection_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="Minimum person-detector score to start tracking."
    )
    min_tracking_confidence: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Minimum landmark-model pose score to keep tracking without re-detection.",
    )
    num_poses: int = Field(1, ge=1, le=8, description="Largest number of people to track.")
    min_pose_presence_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="Minimum pose presence score (PoseLandmarker)."
    )


class ModelsConfig(_Section):
    complexity: Literal[0, 1, 2] = Field(
        0, description="MediaPipe model_complexity: 0 lite, 1 full, 2 heavy landmark model."
    )
    precision: Literal["int8", "float", "mixed"] = Field(
        "int8",
        description="int8: the built quantised models; float: the float originals; mixed: "
        "int8 with the most sensitive layers in float (lite only, CPU only; closer to float, "
        "slower than int8 on ARM - measure with `edge-pose models evaluate`).",
    )
    threads: int = Field(4, ge=1, le=64, description="CPU threads for the interpreter (XNNPACK).")
    delegate: Literal["cpu", "edgetpu"] = Field(
        "cpu", description="Where the models run: cpu (XNNPACK) or edgetpu (Coral)."
    )
    fallback: Literal["cpu", "none"] = Field(
        "cpu",
        description="When the Edge TPU is missing: 'cpu' runs on the CPU with a warning, "
        "'none' fails.",
    )

    @field_validator("precision")
    @classmethod
    def _mixed_is_lite_only(cls, value: str, info: ValidationInfo) -> str:
        name = COMPLEXITY_NAMES[info.data.get("complexity", 0)]
        if value == "mixed" and name not in MIXED_ROLES:
            raise ValueError(
                f"a mixed-precision model exists only for complexity 0 (lite), not {name}"
            )
        return value

    @field_validator("delegate")
    @classmethod
    def _edgetpu_needs_int8(cls, value: str, info: ValidationInfo) -> str:
        if value == "edgetpu" and info.data.get("precision") == "mixed":
            raise ValueError(
                'the Edge TPU runs fully int8 models only; use precision = "int8" with it'
            )
        return value

    @field_validator("fallback", mode="before")
    @classmethod
    def _fallback_bool(cls, value: object) -> object:
        if isinstance(value, bool):  # `fallback = true` reads naturally too
            return "cpu" if value else "none"
        return value

    verify: bool = Field(
        True, description="Check the model files against the manifest's checksums at start-up."
    )
    dir: str = Field(
        "", description="Folder of the built models and manifest.toml; empty = the installed one."
    )


class MqttConfig(_Section):
    url: str = Field(
        "",
        description=(
            "Broker URL, mqtt://host:1883 or mqtts://host:8883 (TLS). Empty: start the "
            "embedded broker on embedded_bind:embedded_port."
        ),
    )
    node_id: str = Field(
        "edge-pose",
        min_length=1,
        max_length=64,
        description="This device's id in topics: letters, digits, '_' and '-'.",
    )
    base_topic: str = Field(
        "edge-pose",
        min_length=1,
        max_length=128,
        description=(
            "Topic prefix shared by all nodes: this node publishes under "
            "<base_topic>/<node_id>/ (pose, availability, presence, count, stats)."
        ),
    )
    discovery: bool = Field(True, description="Publish Home Assistant MQTT discovery messages.")
    discovery_prefix: str = Field(
        "homeassistant", min_length=1, max_length=128, description="Home Assistant's prefix."
    )
    qos: Literal[0, 1] = Field(0, description="QoS of pose messages (status and stats use 1).")
    protocol: Literal["3.1.1", "5"] = Field(
        "3.1.1",
        description="MQTT version; '5' adds content types and a send-time property "
        "(publish-to-receipt latency in `edge-pose listen --protocol 5`).",
    )
    encoding: Literal["json", "msgpack", "cbor"] = Field(
        "json", description="Pose payload encoding (json is what Home Assistant reads)."
    )
    max_pose_rate_hz: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="At most this many pose messages per second; 0 = one per frame.",
    )
    device_name: str = Field(
        "", max_length=64, description="Home Assistant device name; empty = edge-pose <node_id>."
    )
    mask_rate_hz: float = Field(
        1.0,
        gt=0.0,
        le=60.0,
        description="With pipeline.enable_segmentation: segmentation masks published per second.",
    )
    mask_max_side_px: int = Field(
        64, ge=8, le=1024, description="Longest side of a published mask (pixels)."
    )
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive (seconds).")
    queue_size: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Pose messages buffered while the broker is away; older ones are dropped.",
    )
    client_id: str = Field(
        "", max_length=64, description="MQTT client id; empty = edge-pose-<node_id>."
    )
    username: str = Field("", max_length=256, description="MQTT user name; empty = anonymous.")
    password_file: str = Field(
        "",
        description=(
            "File holding the MQTT password. Empty: the systemd credential "
            "'mqtt-password' ($CREDENTIALS_DIRECTORY) when present."
        ),
    )
    ca_file: str = Field(
        "", description="CA certificates for mqtts://; empty = the system's trust store."
    )
    cert_file: str = Field("", description="Client certificate for mqtts:// (optional).")
    key_file: str = Field("", description="Client key for mqtts:// (optional).")
    tls_insecure: bool = Field(
        False, description="Skip TLS certificate verification (testing only)."
    )
    embedded_bind: str = Field(
        "127.0.0.1",
        description=(
            "Embedded broker: address to listen on. Loopback by default; any other address "
            "requires a password."
        ),
    )
    embedded_port: int = Field(1883, ge=1, le=65535, description="Embedded broker: TCP port.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value:
            return value
        from edge.publish.settings import parse_broker_url

        try:
            parse_broker_url(value)
        except ValueError as exc:
            reason = str(exc).removeprefix("url: ")
            raise ValueError(
                f"must look like mqtt://host:1883 or mqtts://host:8883 (or be empty): {reason}"
            ) from None
        return value

    @field_validator("node_id")
    @classmethod
    def _check_node_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", value):
            raise ValueError("may only hold letters, digits, '_' and '-'")
        return value

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _check_topic(cls, value: str) -> str:
        if not _TOPIC_LEVEL.fullmatch(value):
            raise ValueError(
                "must be topic levels of letters, digits, '_' and '-' separated by '/' "
                "(no wildcards, no empty levels, no leading or trailing '/')"
            )
        return value

    @field_validator("embedded_bind")
    @classmethod
    def _check_bind(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1 or ::1") from None
        return value


class StatsConfig(_Section):
    interval_s: float = Field(
        10.0,
        ge=1.0,
        le=3600.0,
        description="Seconds between stats messages, STATUS= updates and the log summary.",
    )
    state_file: str = Field(
        "",
        description=(
            "Where the last stats are written for `edge-pose status`; empty = "
            "$STATE_DIRECTORY/stats.json when systemd sets it, else no file."
        ),
    )


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe level written."
    )
    format: Literal["auto", "journal", "plain"] = Field(
        "auto",
        description=(
            "journal: '<N>' severity prefixes for journald; plain: 'LEVEL name: message'; "
            "auto: journal when $JOURNAL_STREAM is set."
        ),
    )


class EdgeConfig(_Section):
    source: SourceConfig = Field(default_factory=SourceConfig, description="[source]")
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig, description="[pipeline]")
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="[models]")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="[mqtt]")
    stats: StatsConfig = Field(default_factory=StatsConfig, description="[stats]")
    log: LogConfig = Field(default_factory=LogConfig, description="[log]")


SECTIONS: dict[str, type[_Section]] = {
    "source": SourceConfig,
    "pipeline": PipelineConfig,
    "models": ModelsConfig,
    "mqtt": MqttConfig,
    "stats": StatsConfig,
    "log": LogConfig,
}


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config, the password it refers to, and where it came from."""

    config: EdgeConfig
    mqtt_password: SecretStr | None
    #: The file that was read, or None when the built-in defaults were used.
    path: Path | None
    #: Where the password came from (a path), for messages; never the password.
    password_origin: str | None = None


# --- loading -------------------------------------------------------------------------------


def _describe_allowed(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid"))
    if kind == "literal_error" and "expected" in ctx:
        return f"allowed: {ctx['expected']}"
    if kind.startswith("value_error"):
        return msg.removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def _key_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _format_value(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _mask_url_password(text: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:********@host`` (URLs get echoed)."""
    return re.sub(r"(://[^/@:\s]*:)[^/@\s]*@", rf"\g<1>{_SECRET_MASK}@", text)


def _format_errors(exc: ValidationError, origins: Mapping[str, str], default: str) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        key = _key_name(loc)
        origin = origins.get(key, default)
        if error.get("type") == "extra_forbidden":
            lines.append(_unknown_key_message(loc, origin))
            continue
        value = error.get("input")
        if isinstance(value, str):
            value = _mask_url_password(value)
        lines.append(f"{key} = {_format_value(value)}: {_describe_allowed(error)} ({origin})")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _unknown_key_message(loc: tuple[Any, ...], origin: str) -> str:
    key = _key_name(loc)
    if len(loc) == 1:
        allowed = ", ".join(SECTIONS)
        return f"unknown section or key {key!r} ({origin}); allowed sections: {allowed}"
    section = SECTIONS.get(str(loc[0]))
    if section is None:
        return f"unknown key {key!r} ({origin})"
    if loc[-1] == "password":
        return (
            f"unknown key {key!r} ({origin}): passwords are never read from the config; "
            f"put it in a file named by mqtt.password_file or in the systemd credential "
            f"{CREDENTIAL_NAME!r} (LoadCredential=)"
        )
    allowed = ", ".join(section.model_fields)
    return f"unknown key {key!r} ({origin}); allowed keys in [{loc[0]}]: {allowed}"


def _parse_env_value(raw: str) -> Any:
    """An env value as a TOML value when it is one (30, 0.5, true, "x"), else the raw string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``EDGE_POSE_<SECTION>__<KEY>`` variables as a nested dict (names lower-cased)."""
    out: dict[str, dict[str, Any]] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].partition("__")
        section, key = section.lower(), key.lower()
        if section not in SECTIONS:
            raise ConfigError(
                f"environment variable {name}: unknown section {section!r}; "
                f"allowed: {', '.join(SECTIONS)}"
            )
        if key not in SECTIONS[section].model_fields:
            raise ConfigError(
                f"environment variable {name}: unknown key {section}.{key}; allowed keys in "
                f"[{section}]: {', '.join(SECTIONS[section].model_fields)}"
            )
        out.setdefault(section, {})[key] = _parse_env_value(raw)
    return out


def _merge(base: dict[str, Any], top: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for section, values in top.items():
        current = merged.get(section)
        if current is None:
            current = {}
        elif not isinstance(current, dict):  # an override must not hide `mqtt = 5`
            raise ConfigError(
                f"{section} = {_format_value(current)}: must be a table ([{section}] section)"
            )
        current.update(values)
        merged[section] = current
    return merged


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable by this user") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None


def validate(
    data: Mapping[str, Any], origin: str, origins: Mapping[str, str] | None = None
) -> EdgeConfig:
    """Validate merged data; ``origins`` maps "section.key" to where a value came from."""
    try:
        return EdgeConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origins or {}, origin)) from None


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    read_secrets: bool = True,
) -> LoadedConfig:
    """Read, merge and validate the configuration; raise :class:`ConfigError` on any problem.

    ``path`` None means the default file when it exists, else the built-in defaults.
    ``overrides`` are command-line flags as ``{section: {key: value}}``.
    """
    environ = os.environ if env is None else env
    data: dict[str, Any] = {}
    used_path: Path | None = None
    if path is not None:
        data = read_toml(path)
        used_path = path
    elif DEFAULT_CONFIG_PATH.is_file():
        data = read_toml(DEFAULT_CONFIG_PATH)
        used_path = DEFAULT_CONFIG_PATH
    origin = str(used_path) if used_path else "defaults"
    from_env = env_overrides(environ)
    origins: dict[str, str] = {}
    for section, values in from_env.items():
        for key in values:
            name = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            origins[f"{section}.{key}"] = f"environment variable {name}"
    for flag_section, flag_values in (overrides or {}).items():
        for key in flag_values:
            origins[f"{flag_section}.{key}"] = "command line"
    merged = _merge(_merge(data, from_env), overrides or {})
    config = validate(merged, origin, origins)
    password, password_origin = (None, None)
    if read_secrets:
        password, password_origin = read_mqtt_password(config.mqtt, environ)
    _check_cross_fields(config, password)
    return LoadedConfig(config, password, used_path, password_origin)


def _check_cross_fields(config: EdgeConfig, password: SecretStr | None) -> None:
    mqtt = config.mqtt
    beyond_loopback = not ipaddress.ip_address(mqtt.embedded_bind).is_loopback
    if not mqtt.url and beyond_loopback and (password is None or not mqtt.username):
        raise ConfigError(
            f"mqtt.embedded_bind = {mqtt.embedded_bind!r}: the embedded broker listens "
            "beyond loopback only with mqtt.username and a password (mqtt.password_file "
            f"or the {CREDENTIAL_NAME!r} credential)"
        )
    if password is not None and not mqtt.username:
        raise ConfigError("mqtt.username is empty but a password is configured: set mqtt.username")
    if mqtt.tls_insecure and not mqtt.url.startswith("mqtts://"):
        raise ConfigError("mqtt.tls_insecure = true: only meaningful with an mqtts:// url")
    if config.source.backoff_initial_s > config.source.backoff_max_s:
        raise ConfigError(
            f"source.backoff_initial_s = {config.source.backoff_initial_s}: must not exceed "
            f"source.backoff_max_s = {config.source.backoff_max_s}"
        )
    if (mqtt.cert_file == "") != (mqtt.key_file == ""):
        raise ConfigError("mqtt.cert_file and mqtt.key_file must be set together")
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(mqtt, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"mqtt.{key} = {value!r}: no such file")


def read_mqtt_password(
    mqtt: MqttConfig, env: Mapping[str, str]
) -> tuple[SecretStr | None, str | None]:
    """The password from ``password_file`` or the systemd credential; None when neither."""
    if mqtt.password_file:
        path = Path(mqtt.password_file)
        creds = env.get("CREDENTIALS_DIRECTORY")
        if not path.is_absolute() and creds:
            path = Path(creds) / path
        return _read_secret(path, "mqtt.password_file"), str(path)
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        path = Path(creds) / CREDENTIAL_NAME
        if path.exists():
            return _read_secret(path, f"credential {CREDENTIAL_NAME!r}"), str(path)
    return None, None


def _read_secret(path: Path, key: str) -> SecretStr:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{key} = {str(path)!r}: the file does not exist") from None
    except PermissionError:
        raise ConfigError(
            f"{key} = {str(path)!r}: not readable by this user (uid {os.getuid()}); "
            "allow it to read the file or pass it with LoadCredential="
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{key} = {str(path)!r}: is a directory, expected a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key} = {str(path)!r}: cannot be read ({type(exc).__name__})") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise ConfigError(f"{key} = {str(path)!r}: the file is empty")
    return SecretStr(secret)


def example_text() -> str:
    """The commented example config shipped as package data (every key, its default)."""
    return resources.files("edge").joinpath("data/config.example.toml").read_text(encoding="utf-8")


# --- showing -------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _toml_string(str(value))


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:  # lone surrogates cannot be written in TOML
            out.append("\\uFFFD")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_toml(loaded: LoadedConfig) -> str:
    """The effective config as TOML, with the password masked (never printed)."""
    data = loaded.config.model_dump()
    lines = [f"# effective configuration ({loaded.path or 'built-in defaults'} + overrides)"]
    for section, values in data.items():
        lines.append("")
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        if section == "mqtt":
            state = (
                f"{_SECRET_MASK}  # from {loaded.password_origin}"
                if loaded.mqtt_password is not None
                else "(none)"
            )
            lines.append(f"# password: {state}")
    return "\n".join(lines) + "\n"


def changed_sections(old: EdgeConfig, new: EdgeConfig) -> set[str]:
    """Names of the sections whose values differ."""
    return {name for name in SECTIONS if getattr(old, name) != getattr(new, name)}
