"""Building a configured paho client (protocol, credentials, TLS): shared by the
publisher and the one-shot command-line tools. paho is imported inside functions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from edge.publish.settings import MqttSettings

if TYPE_CHECKING:
    import paho.mqtt.client as paho

log = logging.getLogger(__name__)

#: CONNACK reason codes (MQTT 5 numbering; paho maps 3.1.1's 4 and 5 to 0x86 and 0x87)
#: after which retrying cannot help: bad user name or password, not authorised,
#: banned, bad authentication method.
AUTH_FAILURE_CODES = frozenset({0x86, 0x87, 0x8A, 0x8C})


def build_paho_client(settings: MqttSettings, client_id: str) -> paho.Client:
    """A paho client (callback API v2) with protocol, credentials and TLS from ``settings``.

    TLS verifies the broker's certificate and host name unless ``tls_insecure``.
    Raises ``ValueError`` naming the file when a CA or client certificate cannot be loaded.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    protocol = mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=True if protocol == mqtt.MQTTv311 else None,
    )
    client.suppress_exceptions = True
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set_context(tls_context(settings))
    return client


def tls_context(settings: MqttSettings) -> Any:
    """An ``ssl.SSLContext`` for the broker: system CAs or ``ca_file``, optional client cert."""
    import ssl

    try:
        ctx = ssl.create_default_context(cafile=settings.ca_file)
        if settings.certfile:
            ctx.load_cert_chain(settings.certfile, settings.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"tls: cannot load ca_file/certfile/keyfile ({type(exc).__name__}: {exc})"
        ) from None
    if settings.tls_insecure:
        log.warning("MQTT: TLS certificate verification is OFF (tls_insecure = true)")
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
