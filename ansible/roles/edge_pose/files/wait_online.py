"""Wait for a retained "online" on an edge-pose availability topic (runs in the venv).

Exit 0: online seen; 1: connected but not online in time (or another value); 2: the
broker could not be reached (the role reports this and does not fail).
"""

from __future__ import annotations

import argparse
import ssl
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--username", default="")
    p.add_argument("--password-file", default="")
    p.add_argument("--ca-file", default="")
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()
    url = urlsplit(args.url)
    tls = url.scheme == "mqtts"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
    if args.username:
        pw = Path(args.password_file)
        password = pw.read_text(encoding="utf-8").strip() if pw.is_file() else None
        client.username_pw_set(args.username, password)
    if tls:
        client.tls_set(ca_certs=args.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
    seen: list[str] = []
    done = threading.Event()

    def on_connect(c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        c.subscribe(args.topic, qos=1)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        seen.append(msg.payload.decode("utf-8", "replace"))
        if seen[-1] == "online":
            done.set()

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(url.hostname or "localhost", url.port or (8883 if tls else 1883), 30)
    except (OSError, ssl.SSLError) as exc:
        print(f"cannot connect: {exc}")
        return 2
    client.loop_start()
    ok = done.wait(args.timeout)
    client.loop_stop()
    client.disconnect()
    if ok:
        print(f"{args.topic} = online")
        return 0
    print(f"{args.topic}: no 'online' within {args.timeout:.0f} s (seen: {seen or 'nothing'})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
