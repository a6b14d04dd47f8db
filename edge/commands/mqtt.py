"""`edge-pose mqtt`: broker chores: test a connection, show or remove a node's discovery.

Connection options are shared with `edge-pose listen` (see :func:`add_connection_args`).
Passwords are read from a file or systemd credential, never from the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_CONNECT = 3

HELP = """\
Broker chores for edge-pose nodes.

  edge-pose mqtt test-connection --url mqtts://broker:8883 --ca-file ca.crt \\
        --username pi --password-file /etc/edge-pose/mqtt-password
  edge-pose mqtt discovery --node kitchen           # print the Home Assistant configs
  edge-pose mqtt remove-node --url mqtt://broker:1883 --node kitchen

remove-node clears the node's retained discovery configs (Home Assistant then
removes its entities and device) and its retained state topics.
"""


def add_connection_args(p: argparse.ArgumentParser) -> None:
    """Broker URL, credentials and TLS options (shared by `mqtt` and `listen`)."""
    g = p.add_argument_group("broker")
    g.add_argument(
        "--url",
        default="mqtt://127.0.0.1:1883",
        help="broker, mqtt://host[:1883] or mqtts://host[:8883] (TLS, verified) "
        "(default: %(default)s)",
    )
    g.add_argument("--username", help="user name (or give it in the URL: mqtt://user@host)")
    g.add_argument(
        "--password-file",
        help="file holding the password (one line); never pass a password on the command line",
    )
    g.add_argument(
        "--credential",
        default="mqtt-password",
        help="name of the password in $CREDENTIALS_DIRECTORY (systemd LoadCredential=); "
        "used when that directory is set (default: %(default)s)",
    )
    g.add_argument("--ca-file", help="CA certificate(s) to verify the broker (default: system CAs)")
    g.add_argument("--certfile", help="client certificate (with --keyfile)")
    g.add_argument("--keyfile", help="client private key")
    g.add_argument(
        "--insecure",
        action="store_true",
        help="do NOT verify the broker's certificate (testing only)",
    )
    g.add_argument(
        "--protocol", choices=["3.1.1", "5"], default="3.1.1", help="MQTT version (default: 3.1.1)"
    )


def settings_from_args(args: argparse.Namespace, **overrides: Any) -> Any:
    """MqttSettings from parsed connection options; raises ``ValueError`` with the bad option."""
    from edge.publish import MqttSettings, parse_broker_url, read_secret

    address = parse_broker_url(args.url)
    username = args.username or address.username
    password = None
    if username is not None and (
        args.password_file or (args.credential and os.environ.get("CREDENTIALS_DIRECTORY"))
    ):
        try:
            password = read_secret(args.password_file, args.credential)
        except ValueError:
            if args.password_file:
                raise
    values: dict[str, Any] = {
        "host": address.host,
        "port": address.port,
        "tls": address.tls,
        "ca_file": args.ca_file,
        "certfile": args.certfile,
        "keyfile": args.keyfile,
        "tls_insecure": bool(args.insecure),
        "username": username,
        "password": password,
        "protocol": args.protocol,
    }
    values.update(overrides)
    return MqttSettings(**values)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "mqtt",
        help="broker chores: test-connection, discovery, remove-node",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])
    mqtt_sub = p.add_subparsers(dest="mqtt_command", metavar="ACTION")

    t = mqtt_sub.add_parser(
        "test-connection",
        help="connect once and say whether it works (and why not)",
        description="Connect, wait for the broker's answer, disconnect. Publishes nothing. "
        "Exit 0 when connected, 3 otherwise (network, TLS, authentication).",
    )
    add_connection_args(t)
    t.add_argument("--timeout", type=float, default=10.0, help="seconds (default: %(default)s)")
    t.set_defaults(func=_test_connection)

    d = mqtt_sub.add_parser(
        "discovery",
        help="print a node's Home Assistant discovery messages (no broker needed)",
    )
    _node_args(d)
    d.set_defaults(func=_discovery)

    r = mqtt_sub.add_parser(
        "remove-node",
        help="clear a node's retained discovery configs and state topics",
        description="Publishes empty retained messages to the node's discovery config topics "
        "and its presence/count/availability/stats/mask topics. Home Assistant then removes "
        "the node's entities. Exit 0 when every clear was acknowledged.",
    )
    add_connection_args(r)
    _node_args(r)
    r.add_argument("--timeout", type=float, default=10.0, help="seconds (default: %(default)s)")
    r.set_defaults(func=_remove_node)


def _node_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--node", required=True, help="node id (as in the daemon's [mqtt] node_id)")
    p.add_argument("--base-topic", default="", help="base topic (default: edge-pose/NODE)")
    p.add_argument(
        "--discovery-prefix", default="homeassistant", help="HA discovery prefix (%(default)s)"
    )


def _node_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "node_id": args.node,
        "base_topic": args.base_topic,
        "discovery_prefix": args.discovery_prefix,
    }


def _test_connection(args: argparse.Namespace) -> int:
    from edge.publish.tools import check_connection

    try:
        settings = settings_from_args(args)
        outcome = check_connection(settings, args.timeout)
    except ValueError as exc:
        print(f"edge-pose mqtt: {exc}", file=sys.stderr)
        return EXIT_CONNECT
    if outcome.ok:
        tls = ""
        if settings.tls:
            tls = ", TLS NOT verified" if settings.tls_insecure else ", TLS verified"
        print(f"OK: connected to {settings.url} (MQTT {settings.protocol}{tls})")
        return EXIT_OK
    print(f"FAILED ({outcome.kind}): {settings.url}: {outcome.detail}", file=sys.stderr)
    return EXIT_CONNECT


def _discovery(args: argparse.Namespace) -> int:
    from edge.publish import MqttSettings
    from edge.publish.discovery import discovery_messages

    try:
        settings = MqttSettings(**_node_overrides(args))
    except ValueError as exc:
        print(f"edge-pose mqtt: {exc}", file=sys.stderr)
        return EXIT_FAIL
    for topic, payload in discovery_messages(settings):
        print(topic)
        print(json.dumps(json.loads(payload), indent=2))
    return EXIT_OK


def _remove_node(args: argparse.Namespace) -> int:
    from edge.publish.tools import remove_node

    try:
        settings = settings_from_args(args, **_node_overrides(args))
        outcome, cleared = remove_node(settings, args.timeout)
    except ValueError as exc:
        print(f"edge-pose mqtt: {exc}", file=sys.stderr)
        return EXIT_CONNECT
    for topic in cleared:
        print(f"cleared {topic}")
    if not outcome.ok:
        print(f"FAILED ({outcome.kind}): {settings.url}: {outcome.detail}", file=sys.stderr)
        return EXIT_CONNECT
    print(f"node {settings.node_id!r}: {len(cleared)} retained topics cleared")
    return EXIT_OK
