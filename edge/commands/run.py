"""`edge-pose run`: the daemon (capture -> pose pipeline -> MQTT), for systemd or a terminal."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

HELP = "run the daemon: camera -> pose -> MQTT (sample clip + embedded broker by default)"

DESCRIPTION = """\
Capture frames, track poses and publish 33 landmarks per person over MQTT until
stopped. Configuration comes from one TOML file (/etc/edge-pose/config.toml, or
--config FILE), then EDGE_POSE_<SECTION>__<KEY> environment variables, then the
flags below. With nothing configured it loops a sample clip shipped with
edge-pose and starts an embedded MQTT broker on 127.0.0.1:1883, so

    edge-pose run &  edge-pose listen

shows landmarks on a machine with no camera and no broker.

Signals: SIGTERM/SIGINT stop cleanly (the frame in hand is finished, `stopped`
is published, exit 0); SIGHUP reloads the config, restarting only the parts
whose section changed. Under systemd (Type=notify) it reports READY=1 after the
first frame, STATUS= lines, and watchdog pings only while frames flow.

Exit status: 0 stopped cleanly (or a file source ended), 78 configuration
error (names the key), 65 a model file is missing or corrupt, 1 anything else
(a camera missing or busy, a source that failed for good): systemd restarts
only on 1.
The MQTT password is never a flag: use mqtt.password_file or the systemd
credential mqtt-password.
"""

EPILOG = """\
examples:
  edge-pose run                                        # sample clip, embedded broker
  edge-pose run --source /dev/video0 --broker mqtt://nas.local:1883 --node-id hall
  edge-pose run --source picamera2 --delegate edgetpu
  EDGE_POSE_SOURCE__FPS=15 edge-pose run --config ./config.toml
  systemctl reload edge-pose                           # SIGHUP: reload the config
"""

_SYSLOG_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML config (default: /etc/edge-pose/config.toml when it exists, else defaults)",
    )
    p.add_argument(
        "--source",
        "-s",
        metavar="URI",
        help="[source] uri: picamera2, /dev/video0, rtsp://..., a file or a folder",
    )
    p.add_argument("--loop", action="store_true", default=None, help="[source] loop: repeat a file")
    p.add_argument(
        "--broker", metavar="URL", help="[mqtt] url: mqtt://host:1883 or mqtts://host:8883"
    )
    p.add_argument("--node-id", metavar="ID", help="[mqtt] node_id: this device's id in topics")
    p.add_argument(
        "--base-topic",
        metavar="TOPIC",
        help="[mqtt] base_topic: topics are <base_topic>/<node_id>/...",
    )
    p.add_argument("--threads", type=int, metavar="N", help="[models] threads for the interpreter")
    p.add_argument("--delegate", choices=("cpu", "edgetpu"), help="[models] delegate")
    p.add_argument(
        "--stats-interval", type=float, metavar="S", help="[stats] interval_s between stats"
    )
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="[log] level")
    p.set_defaults(func=_run, configures_logging=True)


def flag_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The flags that were given, as ``{section: {key: value}}``."""
    mapping = {
        "source": ("source", "uri"),
        "loop": ("source", "loop"),
        "broker": ("mqtt", "url"),
        "node_id": ("mqtt", "node_id"),
        "base_topic": ("mqtt", "base_topic"),
        "threads": ("models", "threads"),
        "delegate": ("models", "delegate"),
        "stats_interval": ("stats", "interval_s"),
        "log_level": ("log", "level"),
    }
    out: dict[str, dict[str, Any]] = {}
    for attr, (section, key) in mapping.items():
        value = getattr(args, attr, None)
        if value is not None:
            out.setdefault(section, {})[key] = value
    return out


class JournalFormatter(logging.Formatter):
    """``<N>name: message`` lines: journald reads N as the syslog priority."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])


def _journal_stream_is_stderr(env: dict[str, str] | os._Environ[str]) -> bool:
    """``$JOURNAL_STREAM`` is "dev:inode" of the journal socket when stderr goes there."""
    raw = env.get("JOURNAL_STREAM", "")
    if not raw:
        return False
    try:
        dev, ino = (int(part) for part in raw.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return st.st_dev == dev and st.st_ino == ino


def setup_logging(level: str, fmt: str, verbose: int) -> None:
    """Configure the root logger for the daemon (stderr; journald priorities if asked)."""
    numeric = getattr(logging, level.upper())
    if verbose >= 2:
        numeric = logging.DEBUG
    elif verbose == 1:
        numeric = min(numeric, logging.INFO)
    journal = fmt == "journal" or (fmt == "auto" and _journal_stream_is_stderr(os.environ))
    handler = logging.StreamHandler(sys.stderr)
    if journal:
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Chatty libraries stay at warning unless we are debugging.
    for name in ("amqtt", "transitions", "asyncio"):
        logging.getLogger(name).setLevel(
            logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING
        )


def _run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from edge.config import ConfigError, EdgeConfig, LoadedConfig, load_config

    # Until the daemon's own handlers are in place, remember a stop request.
    early_stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: early_stop.set())
    overrides = flag_overrides(args)
    setup_logging("info", "auto", args.verbose)
    log = logging.getLogger("edge.run")

    def load() -> LoadedConfig:
        return load_config(args.config, overrides=overrides)

    try:
        loaded = load()
    except ConfigError as exc:
        log.error("%s", exc)
        return exc.exit_status
    setup_logging(loaded.config.log.level, loaded.config.log.format, args.verbose)

    def apply_logging(config: EdgeConfig) -> None:
        setup_logging(config.log.level, config.log.format, args.verbose)

    from edge.app import AppFactory
    from edge.daemon import Daemon

    daemon = Daemon(loaded, AppFactory(), reload=load, apply_logging=apply_logging)
    daemon.install_signal_handlers()
    if early_stop.is_set():
        daemon.request_stop()
    log.info(
        "edge-pose starting (pid %d, config %s)", os.getpid(), loaded.path or "built-in defaults"
    )
    return daemon.run()
