"""The config mapped onto the parts' own option objects (edge.app): every key arrives."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from edge.app import (
    mqtt_settings,
    node_base_topic,
    pose_options,
    sample_clip,
    source_options,
    source_uri,
)
from edge.config import ConfigError, load_config


def test_defaults_use_the_sample_clip_looped_in_real_time() -> None:
    cfg = load_config(None, env={}).config
    assert source_uri(cfg.source) == str(sample_clip())
    assert sample_clip().is_file()
    opts = source_options(cfg.source)
    assert opts.loop and opts.realtime
    assert opts.width is None and opts.fps is None and opts.main_size is None
    assert opts.fourcc == "MJPG"


def test_source_options_carry_every_key() -> None:
    env = {
        "EDGE_POSE_SOURCE__URI": "/dev/video0",
        "EDGE_POSE_SOURCE__WIDTH": "640",
        "EDGE_POSE_SOURCE__HEIGHT": "480",
        "EDGE_POSE_SOURCE__FPS": "15",
        "EDGE_POSE_SOURCE__ROTATION": "180",
        "EDGE_POSE_SOURCE__HFLIP": "true",
        "EDGE_POSE_SOURCE__FOURCC": '""',
        "EDGE_POSE_SOURCE__MAIN_SIZE": "[1920, 1080]",
        "EDGE_POSE_SOURCE__EXPOSURE_TIME_US": "10000",
        "EDGE_POSE_SOURCE__BACKOFF_MAX_S": "5",
    }
    opts = source_options(load_config(None, env=env).config.source)
    assert (opts.width, opts.height, opts.fps, opts.rotation) == (640, 480, 15.0, 180)
    assert opts.hflip and not opts.vflip and not opts.loop
    assert opts.fourcc is None
    assert opts.main_size == (1920, 1080)
    assert opts.exposure_time_us == 10000
    assert opts.analogue_gain is None
    assert opts.backoff.max_s == 5.0
    with pytest.raises(ConfigError, match=r"source\.width = 640, source\.height = 0"):
        source_options(load_config(None, env={"EDGE_POSE_SOURCE__WIDTH": "640"}).config.source)


def test_pose_options_use_mediapipe_names() -> None:
    env = {
        "EDGE_POSE_PIPELINE__NUM_POSES": "3",
        "EDGE_POSE_PIPELINE__MIN_DETECTION_CONFIDENCE": "0.6",
        "EDGE_POSE_MODELS__THREADS": "3",
        "EDGE_POSE_MODELS__FALLBACK": "false",
        "EDGE_POSE_MODELS__DELEGATE": "edgetpu",
    }
    cfg = load_config(None, env=env).config
    opts = pose_options(cfg.pipeline, cfg.models)
    assert opts.num_poses == 3
    assert opts.min_detection_confidence == 0.6
    assert opts.num_threads == 3
    assert opts.delegate == "edgetpu"
    assert opts.fallback == "none"
    assert opts.model_complexity == 0 and opts.precision == "int8"


def test_mqtt_settings_embedded_and_external(tmp_path: Path) -> None:
    cfg = load_config(None, env={"EDGE_POSE_MQTT__NODE_ID": "hall"}).config
    s = mqtt_settings(cfg.mqtt, None)
    assert (s.host, s.port, s.tls) == ("127.0.0.1", 1883, False)
    assert s.base_topic == node_base_topic(cfg.mqtt) == "edge-pose/hall"
    assert s.client_id == "edge-pose-hall"

    ca = tmp_path / "ca.crt"
    ca.write_text("not checked here", encoding="utf-8")
    env = {
        "EDGE_POSE_MQTT__URL": "mqtts://broker.lan",
        "EDGE_POSE_MQTT__USERNAME": "pose",
        "EDGE_POSE_MQTT__CA_FILE": str(ca),
        "EDGE_POSE_MQTT__BASE_TOPIC": "home/pose",
        "EDGE_POSE_MQTT__QOS": "1",
        "EDGE_POSE_MQTT__PROTOCOL": '"5"',
        "EDGE_POSE_MQTT__QUEUE_SIZE": "10",
        "EDGE_POSE_MQTT__MAX_POSE_RATE_HZ": "5",
    }
    cfg = load_config(None, env=env).config
    s = mqtt_settings(cfg.mqtt, SecretStr("pw"))
    assert (s.host, s.port, s.tls, s.ca_file) == ("broker.lan", 8883, True, str(ca))
    assert (s.username, s.password) == ("pose", "pw")
    assert "pw" not in repr(s)
    assert s.base_topic == "home/pose/edge-pose"
    assert (s.pose_qos, s.protocol, s.pose_queue_max, s.max_pose_rate_hz) == (1, "5", 10, 5.0)


def test_mqtt_url_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.url = 'mqtt://u:\*+@h'.*password") as info:
        load_config(None, env={"EDGE_POSE_MQTT__URL": "mqtt://u:secret@h"})
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigError, match=r"mqtt\.tls_insecure"):
        load_config(None, env={"EDGE_POSE_MQTT__TLS_INSECURE": "true"})
