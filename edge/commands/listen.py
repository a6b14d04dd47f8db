"""`edge-pose listen`: watch (or record) the pose stream arriving on a broker."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from edge.commands.mqtt import EXIT_CONNECT, add_connection_args, settings_from_args

EXIT_OK = 0
EXIT_TIMEOUT = 1

DESCRIPTION = """\
Subscribe to edge-pose nodes and print each pose message: node, frame, number of
people, a few landmarks (normalised x, y), the message rate and the latency.

Latency is publish-to-receipt: the publisher stamps its send time into an MQTT 5
user property, so it shows when both sides speak MQTT 5 (--protocol 5 here and
protocol = "5" on the node). The payload's ts_ms is the frame's own clock
(camera, monotonic or media time), not comparable across machines, so it is
not used for latency.
"""

EPILOG = """\
examples:
  edge-pose listen                                  # every node on 127.0.0.1:1883
  edge-pose listen --node kitchen --count 100 --record kitchen.jsonl
  edge-pose listen --url mqtts://broker:8883 --ca-file ca.crt --protocol 5
  edge-pose listen --raw                            # payloads as they arrive

exit status: 0 after --count messages (or, without --count, when stopped or timed
out after at least one message); 1 on --timeout before that; 3 when the broker
cannot be reached or refuses the connection.
"""

#: Landmarks shown per person: (label, MediaPipe index).
SHOWN_LANDMARKS = (("nose", 0), ("l_wrist", 15), ("r_wrist", 16), ("l_ankle", 27), ("r_ankle", 28))


def register(sub: Any) -> None:
    p = sub.add_parser(
        "listen",
        help="print or record the pose messages arriving on the broker",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_args(p)
    p.add_argument("--node", default="+", help="node id, or + for every node (default: +)")
    p.add_argument("--base-topic", help="listen on BASE/pose instead of edge-pose/NODE/pose")
    p.add_argument("--count", type=int, help="exit 0 after this many pose messages")
    p.add_argument("--timeout", type=float, help="give up after this many seconds (exit 1)")
    p.add_argument("--record", metavar="FILE", help="append each pose record to FILE (JSON Lines)")
    p.add_argument("--raw", action="store_true", help="print topic and payload as received")
    p.add_argument(
        "--encoding",
        choices=["auto", "json", "msgpack", "cbor"],
        default="auto",
        help="payload encoding (default: auto-detect)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(func=_run)


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    received_ms: float
    sent_ms: float | None
    content_type: str | None


def decode_payload(payload: bytes, encoding: str, content_type: str | None) -> dict[str, Any]:
    """Decode a pose payload; ``auto`` uses the MQTT 5 content type or sniffs it."""
    from edge.publish.encoding import decode_record

    if encoding != "auto":
        return decode_record(payload, encoding)
    if content_type:
        for name in ("json", "msgpack", "cbor"):
            if content_type.endswith(name):
                return decode_record(payload, name)
    if payload[:1] == b"{":
        return decode_record(payload, "json")
    errors = []
    for name in ("msgpack", "cbor"):
        try:
            return decode_record(payload, name)
        except Exception as exc:
            errors.append(f"{name}: {exc}")
    raise ValueError("cannot decode payload (" + "; ".join(errors) + ")")


def format_record(node: str, record: dict[str, Any]) -> str:
    """One line per message: node, frame, people, and a few landmarks of the first person."""
    poses = record.get("poses") or []
    parts = [f"{node}", f"frame {record.get('frame')}", f"people {len(poses)}"]
    if poses:
        landmarks = poses[0].get("landmarks") or []
        for label, index in SHOWN_LANDMARKS:
            if index < len(landmarks):
                x, y = landmarks[index][0], landmarks[index][1]
                parts.append(f"{label} ({x:.3f}, {y:.3f})")
    return "  ".join(parts)


def _node_of(topic: str) -> str:
    levels = topic.split("/")
    return levels[-2] if len(levels) >= 2 else topic


def _run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        print("edge-pose listen: --count must be >= 1", file=sys.stderr)
        return 2
    from edge.publish import validate_base_topic, validate_node_id
    from edge.publish.tools import connect_blocking

    try:
        if args.base_topic:
            base = validate_base_topic(args.base_topic)
        else:
            node = args.node if args.node == "+" else validate_node_id(args.node)
            base = f"edge-pose/{node}"
        settings = settings_from_args(args, node_id="listen", discovery=False)
    except ValueError as exc:
        print(f"edge-pose listen: {exc}", file=sys.stderr)
        return EXIT_CONNECT

    inbox: queue.Queue[Received] = queue.Queue(maxsize=10000)
    overflow = [0]

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        props = getattr(message, "properties", None)
        sent_ms = None
        content_type = None
        if props is not None:
            for key, value in getattr(props, "UserProperty", []) or []:
                if key == "sent_ms":
                    try:
                        sent_ms = float(value)
                    except ValueError:
                        sent_ms = None
            content_type = getattr(props, "ContentType", None)
        item = Received(
            message.topic, bytes(message.payload), time.time() * 1000, sent_ms, content_type
        )
        try:
            inbox.put_nowait(item)
        except queue.Full:
            overflow[0] += 1

    import os

    client, outcome = connect_blocking(settings, f"edge-pose-listen-{os.getpid()}", 10.0)
    if client is None:
        print(
            f"edge-pose listen: {settings.url}: {outcome.kind}: {outcome.detail}", file=sys.stderr
        )
        return EXIT_CONNECT
    client.on_message = on_message
    pose_topic = f"{base}/pose"
    client.subscribe([(pose_topic, 0), (f"{base}/availability", 1)])
    if not args.quiet:
        print(f"listening on {settings.url} {pose_topic}", file=sys.stderr)
    record_file: TextIO | None = open(args.record, "a", encoding="utf-8") if args.record else None  # noqa: SIM115
    try:
        return _loop(args, inbox, record_file)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        if overflow[0]:
            print(f"edge-pose listen: {overflow[0]} messages dropped (too slow)", file=sys.stderr)
        client.disconnect()
        client.loop_stop()
        if record_file is not None:
            record_file.close()


def _loop(args: argparse.Namespace, inbox: queue.Queue[Received], record: TextIO | None) -> int:
    start = time.monotonic()
    deadline = start + args.timeout if args.timeout else None
    received = bad = 0
    recent: list[float] = []
    latencies: list[float] = []
    while args.count is None or received < args.count:
        wait_s = 0.5 if deadline is None else max(0.0, deadline - time.monotonic())
        if deadline is not None and wait_s <= 0:
            _summary(args, received, bad, latencies, start)
            if args.count is not None or received == 0:
                print(
                    f"edge-pose listen: timeout after {args.timeout:g} s: "
                    f"{received} of {args.count if args.count else 'some'} messages",
                    file=sys.stderr,
                )
                return EXIT_TIMEOUT
            return EXIT_OK
        try:
            msg = inbox.get(timeout=min(wait_s, 0.5))
        except queue.Empty:
            continue
        if msg.topic.endswith("/availability"):
            if not args.quiet:
                text = msg.payload[:32].decode("utf-8", "replace")
                print(f"{_node_of(msg.topic)}  availability {text}")
            continue
        if args.raw:
            print(f"{msg.topic} {msg.payload.decode('utf-8', 'replace')}", flush=True)
        try:
            rec = decode_payload(msg.payload, args.encoding, msg.content_type)
        except Exception as exc:
            bad += 1
            print(f"edge-pose listen: undecodable message on {msg.topic}: {exc}", file=sys.stderr)
            continue
        received += 1
        now = time.monotonic()
        recent = [t for t in recent if now - t < 2.0] + [now]
        rate = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
        latency = None
        if msg.sent_ms is not None:
            latency = msg.received_ms - msg.sent_ms
            latencies.append(latency)
        if record is not None:
            record.write(json.dumps(rec, separators=(",", ":")) + "\n")
            record.flush()
        if not args.raw and not args.quiet:
            extra = f"  {rate:.1f} msg/s"
            if latency is not None:
                extra += f"  latency {latency:.1f} ms"
            print(format_record(_node_of(msg.topic), rec) + extra, flush=True)
    _summary(args, received, bad, latencies, start)
    return EXIT_OK


def _summary(
    args: argparse.Namespace, received: int, bad: int, latencies: list[float], start: float
) -> None:
    elapsed = time.monotonic() - start
    line = f"received {received} pose messages in {elapsed:.1f} s"
    if bad:
        line += f", {bad} undecodable"
    if latencies:
        ordered = sorted(latencies)
        p50 = ordered[len(ordered) // 2]
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        line += f", latency p50 {p50:.1f} ms p95 {p95:.1f} ms"
    print(line, file=sys.stderr)
