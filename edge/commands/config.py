"""`edge-pose config`: validate a config file, or print the effective config."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "check a config file or show the effective configuration"

DESCRIPTION = """\
The daemon reads one TOML file (/etc/edge-pose/config.toml unless --config names
another), then EDGE_POSE_<SECTION>__<KEY> environment variables, then flags.
Unknown keys are errors. A commented example with every key and its default is
edge/data/config.example.toml (`edge-pose config example` prints it).
"""

EPILOG = """\
examples:
  edge-pose config check /etc/edge-pose/config.toml   # exit 0 if valid, 78 and the key if not
  edge-pose config show                               # file + environment, secrets masked
  EDGE_POSE_MQTT__URL=mqtt://nas:1883 edge-pose config show
  edge-pose config schema > config.schema.json        # JSON Schema, with each key's description
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "config",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="config_action", metavar="ACTION")
    check = actions.add_parser("check", help="validate FILE (and the environment) without running")
    check.add_argument("file", type=Path, metavar="FILE", help="the TOML file to check")
    check.set_defaults(func=_check)
    show = actions.add_parser("show", help="print the effective configuration (secrets masked)")
    show.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        metavar="FILE",
        help="config file (default: /etc/edge-pose/config.toml when it exists)",
    )
    show.add_argument("--json", action="store_true", help="JSON instead of TOML")
    show.set_defaults(func=_show)
    schema = actions.add_parser("schema", help="print the JSON Schema of the config")
    schema.set_defaults(func=_schema)
    example = actions.add_parser("example", help="print the commented example config")
    example.set_defaults(func=_example)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _check(args: argparse.Namespace) -> int:
    from edge.config import ConfigError, load_config

    try:
        loaded = load_config(args.file)
    except ConfigError as exc:
        print(f"edge-pose: {exc}", file=sys.stderr)
        return exc.exit_status
    print(f"{loaded.path}: OK")
    return 0


def _show(args: argparse.Namespace) -> int:
    from edge.config import ConfigError, load_config, to_toml

    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        print(f"edge-pose: {exc}", file=sys.stderr)
        return exc.exit_status
    if args.json:
        data = loaded.config.model_dump(mode="json")
        data["mqtt"]["password"] = "********" if loaded.mqtt_password is not None else None
        print(json.dumps(data, indent=2))
        return 0
    sys.stdout.write(to_toml(loaded))
    return 0


def _schema(args: argparse.Namespace) -> int:
    from edge.config import EdgeConfig

    print(json.dumps(EdgeConfig.model_json_schema(), indent=2))
    return 0


def _example(args: argparse.Namespace) -> int:
    from edge.config import example_text

    sys.stdout.write(example_text())
    return 0
