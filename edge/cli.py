"""The ``edge-pose`` command line: one entry point, one sub-command per module.

Each sub-command lives in ``edge/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
taking the parsed arguments and returning an exit status. Command modules keep
heavy imports (OpenCV, LiteRT, paho) inside their functions so that
``edge-pose --help`` is fast and works without hardware libraries.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from edge import __version__

#: The sub-commands, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "run",
    "process",
    "listen",
    "status",
    "sources",
    "config",
    "models",
    "bench",
    "mqtt",
)

DESCRIPTION = """\
Pose estimation for a Raspberry Pi shelf camera: MediaPipe's BlazePose person
detector and GHUM lite landmark model, int8 on CPU (XNNPACK) or a Coral Edge TPU,
with tracking so the detector runs rarely, publishing 33 landmarks over MQTT.
"""

EPILOG = """\
examples:
  edge-pose run                                  # sample clip + embedded broker on 127.0.0.1:1883
  edge-pose listen                               # print the landmarks arriving on the broker
  edge-pose run --config /etc/edge-pose/config.toml
  edge-pose process clip.mp4 --output poses.jsonl --annotate annotated.mp4
  edge-pose config check /etc/edge-pose/config.toml
  edge-pose models verify
  edge-pose bench --compare mediapipe

Run `edge-pose COMMAND --help` for the options of each command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-pose",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edge-pose {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output (-v info, -vv debug)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"edge.commands.{name}")
        module.register(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    if not getattr(args, "configures_logging", False):
        _setup_logging(args.verbose)
    try:
        status: int = func(args)
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
