"""`edge-pose status`: the daemon's last stats, from its state file or the broker."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HELP = "show the running daemon's health (last stats: fps, people, errors, MQTT)"

DESCRIPTION = """\
Every stats interval the daemon writes its stats to a state file
(stats.state_file, or $STATE_DIRECTORY/stats.json under systemd, that is
/var/lib/edge-pose/stats.json) and publishes them retained on
<base_topic>/stats. This command reads the file, or with --from-broker the
retained message (broker options as for `edge-pose listen`), and prints a summary.

Exit status: 0 fresh stats, 1 stale (older than 3 stats intervals and 30 s:
the daemon is stuck or stopped), 3 no stats found.
"""

EPILOG = """\
examples:
  edge-pose status
  edge-pose status --json
  edge-pose status --state-file /var/lib/edge-pose/stats.json
  edge-pose status --from-broker --url mqtt://nas:1883 --base-topic edge-pose/hall
"""

DEFAULT_STATE_FILE = Path("/var/lib/edge-pose/stats.json")
EXIT_STALE = 1
EXIT_NONE = 3
STALE_INTERVALS = 3.0
#: ... but never less than this (a watchdog restart takes WatchdogSec=30 s anyway).
STALE_MIN_S = 30.0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", "-c", type=Path, default=None, metavar="FILE", help="config file")
    p.add_argument("--state-file", type=Path, default=None, metavar="PATH", help="stats file")
    p.add_argument(
        "--from-broker",
        action="store_true",
        help="read the retained <base_topic>/stats from the broker (see --url) instead of the file",
    )
    p.add_argument(
        "--base-topic",
        metavar="TOPIC",
        help="with --from-broker: the node's topic prefix, <base_topic>/<node_id> "
        "(default: from the config)",
    )
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="with --from-broker")
    from edge.commands.mqtt import add_connection_args

    add_connection_args(p)
    p.add_argument("--json", action="store_true", help="print the raw stats record")
    p.set_defaults(func=_run)


def resolve_state_file(args: argparse.Namespace) -> tuple[Path, float]:
    """The state file to read and the stats interval (for staleness)."""
    from edge.config import ConfigError, load_config
    from edge.daemon import state_file_path

    interval_s = 10.0
    if args.state_file is not None:
        path: Path | None = args.state_file
    else:
        path = None
        try:
            config = load_config(args.config, read_secrets=False).config
        except ConfigError:
            config = None
        if config is not None:
            interval_s = config.stats.interval_s
            path = state_file_path(config, os.environ)
    return (path or DEFAULT_STATE_FILE), interval_s


def _from_broker(args: argparse.Namespace) -> dict[str, Any] | None:
    """The retained stats record on the broker, or None when there is none."""
    import threading

    from edge.commands.mqtt import settings_from_args
    from edge.config import ConfigError, load_config
    from edge.publish.tools import connect_blocking

    base = args.base_topic
    if not base:
        try:
            mqtt = load_config(args.config, read_secrets=False).config.mqtt
            base = f"{mqtt.base_topic}/{mqtt.node_id}"
        except ConfigError:
            base = "edge-pose/edge-pose"
    topic = f"{base}/stats"
    settings = settings_from_args(args, node_id="status", discovery=False)
    client, outcome = connect_blocking(settings, "edge-pose-status", args.timeout)
    if client is None:
        raise OSError(f"cannot reach {settings.url}: {outcome.detail}")
    got: list[bytes] = []
    done = threading.Event()

    def on_message(c: Any, userdata: Any, message: Any) -> None:
        got.append(bytes(message.payload))
        done.set()

    client.on_message = on_message
    client.subscribe(topic, qos=1)
    done.wait(args.timeout)
    client.disconnect()
    client.loop_stop()
    if not got:
        return None
    record: dict[str, Any] = json.loads(got[0])
    return record


def format_status(record: dict[str, Any], age_s: float | None) -> str:
    from edge.daemon import summary_line

    head = f"node {record.get('node_id', '?')} (pid {record.get('pid', '?')})"
    if age_s is not None:
        head += f", stats {age_s:.0f} s old"
    uptime = record.get("uptime_s")
    if uptime is not None:
        head += f", up {float(uptime) / 3600:.1f} h"
    mqtt = "connected" if record.get("mqtt_connected") else "NOT connected"
    error = record.get("mqtt_last_error")
    tail = f"mqtt {mqtt}" + (f" (last error: {error})" if error else "")
    return f"{head}\n{summary_line(record)}\n{tail}"


def _run(args: argparse.Namespace) -> int:
    if args.from_broker:
        try:
            record = _from_broker(args)
        except (OSError, ValueError) as exc:
            print(f"edge-pose status: {exc}", file=sys.stderr)
            return EXIT_NONE
        origin = args.url
        interval_s = 10.0
    else:
        path, interval_s = resolve_state_file(args)
        origin = str(path)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            record = None
        except (OSError, ValueError) as exc:
            print(f"edge-pose status: cannot read {path}: {exc}", file=sys.stderr)
            return EXIT_NONE
    if record is None:
        print(f"edge-pose status: no stats at {origin} (is the daemon running?)", file=sys.stderr)
        return EXIT_NONE
    age_s = None
    if isinstance(record.get("time_unix_s"), int | float):
        age_s = max(0.0, time.time() - float(record["time_unix_s"]))
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        print(format_status(record, age_s))
    if age_s is not None and age_s > max(STALE_INTERVALS * interval_s, STALE_MIN_S):
        print(
            f"edge-pose status: stats are {age_s:.0f} s old: the daemon is stopped or stuck",
            file=sys.stderr,
        )
        return EXIT_STALE
    return 0
