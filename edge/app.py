"""The composition root: the only place that builds sources, the pose pipeline,
publishers and the embedded broker from the config.

``edge-pose run`` (through :class:`AppFactory`), ``process`` and ``bench`` get
their parts here, so what is benchmarked is what runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge import paths
from edge.config import (
    ConfigError,
    EdgeConfig,
    LoadedConfig,
    ModelsConfig,
    MqttConfig,
    PipelineConfig,
    SourceConfig,
)

if TYPE_CHECKING:
    from pydantic import SecretStr

    from edge.capture import LatestFrameCapture, SourceOptions
    from edge.pose import PoseOptions, PosePipeline
    from edge.publish import MqttSettings, Publisher
    from edge.publish.embedded_broker import EmbeddedBroker

logger = logging.getLogger(__name__)

SAMPLE_CLIP_NAME = "pose_squats.mp4"
#: The host the publisher connects to when the embedded broker listens on all addresses.
_WILDCARD_BINDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def sample_clip() -> Path:
    """The clip shipped as package data (Apache-2.0, see edge/data/ATTRIBUTION.md)."""
    return paths.package_data_dir() / SAMPLE_CLIP_NAME


# --- source ------------------------------------------------------------------------------------


def source_uri(config: SourceConfig) -> str:
    return config.uri or str(sample_clip())


def source_options(config: SourceConfig) -> SourceOptions:
    """Map ``[source]`` onto the capture options; the sample clip always loops in real time."""
    from edge.capture import SourceOptions

    sized = config.width > 0 and config.height > 0
    if (config.width > 0) != (config.height > 0):
        raise ConfigError(
            f"source.width = {config.width}, source.height = {config.height}: "
            "give both or neither (0 = native size)"
        )
    default_clip = not config.uri
    return SourceOptions(
        width=config.width if sized else None,
        height=config.height if sized else None,
        fps=config.fps if config.fps > 0 else None,
        loop=True if default_clip else config.loop,
        realtime=True if default_clip else config.realtime,
        rotation=config.rotation,
        hflip=config.hflip,
        vflip=config.vflip,
        stall_timeout_s=config.stall_timeout_s,
        open_timeout_s=config.open_timeout_s,
        fourcc=config.fourcc or None,
        pixel_format=config.pixel_format,
        main_size=config.main_size if config.main_size != (0, 0) else None,
        exposure_time_us=config.exposure_time_us or None,
        analogue_gain=config.analogue_gain or None,
        backoff_initial_s=config.backoff_initial_s,
        backoff_max_s=config.backoff_max_s,
    )


def build_capture(config: SourceConfig) -> LatestFrameCapture:
    """The capture thread over the configured source (not started)."""
    from edge.capture import LatestFrameCapture, SourceError, create_source

    options = source_options(config)
    try:
        source = create_source(source_uri(config), options)
    except SourceError as exc:
        raise ConfigError(f"source.uri = {config.uri!r}: {exc}") from None
    return LatestFrameCapture(source, backoff=options.backoff)


# --- pipeline ------------------------------------------------------------------------------------


def pose_options(pipeline: PipelineConfig, models: ModelsConfig) -> PoseOptions:
    """``[pipeline]`` (MediaPipe's names) and ``[models]`` as the pipeline's options."""
    from edge.pose import PoseOptions

    return PoseOptions(
        static_image_mode=pipeline.static_image_mode,
        model_complexity=models.complexity,
        smooth_landmarks=pipeline.smooth_landmarks,
        enable_segmentation=pipeline.enable_segmentation,
        smooth_segmentation=pipeline.smooth_segmentation,
        min_detection_confidence=pipeline.min_detection_confidence,
        min_tracking_confidence=pipeline.min_tracking_confidence,
        num_poses=pipeline.num_poses,
        min_pose_presence_confidence=pipeline.min_pose_presence_confidence,
        precision=models.precision,
        num_threads=models.threads,
        delegate=models.delegate,
        fallback=models.fallback,
    )


def verify_models(models: ModelsConfig) -> None:
    """Check the int8 models the config needs against the manifest (raises StartupError)."""
    if models.precision == "float" or not models.verify:
        return
    from edge.daemon import EX_DATAERR, StartupError
    from edge.models import COMPLEXITY_NAMES, ModelIntegrityError, check_models, runtime_roles

    roles = runtime_roles(COMPLEXITY_NAMES[models.complexity], models.precision)
    try:
        check_models(Path(models.dir) if models.dir else None, roles)
    except ModelIntegrityError as exc:
        raise StartupError(str(exc), EX_DATAERR) from None


def build_pipeline(config: EdgeConfig) -> PosePipeline:
    """The pose pipeline the config describes, after checking the model files."""
    from edge.daemon import EX_DATAERR, StartupError
    from edge.pose import build_pipeline as build
    from edge.runtime import ModelLoadError

    verify_models(config.models)
    options = pose_options(config.pipeline, config.models)
    models_dir = Path(config.models.dir) if config.models.dir else None
    try:
        return build(options, models_dir)
    except ValueError as exc:
        raise ConfigError(f"[pipeline]/[models]: {exc}") from None
    except ModelLoadError as exc:
        # A missing or unloadable model file is a data error (65: a restart will not fix
        # it); a delegate that cannot load (a Coral unplugged) may come back (1).
        delegate = "delegate" in str(exc)
        raise StartupError(str(exc), 1 if delegate else EX_DATAERR) from None


# --- MQTT --------------------------------------------------------------------------------------


def node_base_topic(config: MqttConfig) -> str:
    """The prefix of this node's topics: ``<base_topic>/<node_id>``."""
    return f"{config.base_topic}/{config.node_id}"


def mqtt_settings(
    config: MqttConfig, password: SecretStr | None, enable_segmentation: bool = False
) -> MqttSettings:
    """``[mqtt]`` as the publisher's settings (the embedded broker when no url is set)."""
    from edge.publish import MqttSettings, parse_broker_url

    if config.url:
        address = parse_broker_url(config.url)
        host, port, tls = address.host, address.port, address.tls
        username = config.username or address.username
    else:
        host = _WILDCARD_BINDS.get(config.embedded_bind, config.embedded_bind)
        port, tls = config.embedded_port, False
        username = config.username or None
    try:
        return MqttSettings(
            host=host,
            port=port,
            node_id=config.node_id,
            base_topic=node_base_topic(config),
            tls=tls,
            ca_file=config.ca_file or None,
            certfile=config.cert_file or None,
            keyfile=config.key_file or None,
            tls_insecure=config.tls_insecure,
            username=username or None,
            password=password.get_secret_value() if password is not None else None,
            client_id=config.client_id,
            discovery=config.discovery,
            discovery_prefix=config.discovery_prefix,
            pose_qos=config.qos,
            protocol=config.protocol,
            encoding=config.encoding,
            max_pose_rate_hz=config.max_pose_rate_hz or None,
            device_name=config.device_name,
            mask_rate_hz=config.mask_rate_hz,
            mask_max_side_px=config.mask_max_side_px,
            pose_queue_max=config.queue_size,
            keepalive_s=config.keepalive_s,
            mask_enabled=enable_segmentation,
        )
    except ValueError as exc:
        raise ConfigError(f"mqtt.{exc}") from None


def build_publisher(loaded: LoadedConfig) -> Publisher:
    from edge.publish import Publisher

    config = loaded.config
    settings = mqtt_settings(config.mqtt, loaded.mqtt_password, config.pipeline.enable_segmentation)
    return Publisher(settings)


def start_embedded_broker(loaded: LoadedConfig) -> EmbeddedBroker | None:
    """Start the embedded broker when no broker url is configured; None otherwise."""
    mqtt = loaded.config.mqtt
    if mqtt.url:
        return None
    from edge.publish.embedded_broker import EmbeddedBroker

    password = loaded.mqtt_password.get_secret_value() if loaded.mqtt_password else None
    try:
        broker = EmbeddedBroker(
            host=mqtt.embedded_bind,
            port=mqtt.embedded_port,
            username=mqtt.username or None,
            password=password,
        )
    except ValueError as exc:
        raise ConfigError(f"mqtt.embedded_bind = {mqtt.embedded_bind!r}: {exc}") from None
    try:
        broker.start()
    except (OSError, RuntimeError) as exc:
        from edge.daemon import StartupError

        raise StartupError(
            f"embedded MQTT broker cannot listen on {mqtt.embedded_bind}:{mqtt.embedded_port}: "
            f"{exc} (another broker running? set mqtt.url to use it, or mqtt.embedded_port)"
        ) from None
    return broker


# --- the daemon's factory ------------------------------------------------------------------------


class AppFactory:
    """Builds the daemon's parts (see :class:`edge.daemon.PartsFactory`)."""

    def capture(self, config: EdgeConfig) -> LatestFrameCapture:
        return build_capture(config.source)

    def pipeline(self, config: EdgeConfig) -> PosePipeline:
        return build_pipeline(config)

    def broker(self, loaded: LoadedConfig) -> EmbeddedBroker | None:
        return start_embedded_broker(loaded)

    def publisher(self, loaded: LoadedConfig) -> Publisher:
        return build_publisher(loaded)

    def part_stats(self, pipeline: Any, publisher: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("detector_runs", "frames"):
            value = getattr(pipeline, name, None)
            if isinstance(value, int):
                out[f"pipeline_{name}"] = value
        counters = publisher.counters
        out.update(
            {
                "mqtt_connected": counters.connected,
                "pose_sent": counters.pose_sent,
                "pose_dropped": counters.pose_dropped,
                "mqtt_connects": counters.connects,
                "mqtt_last_error": counters.last_error,
            }
        )
        return out
