"""Say *why* a TLS connection fails, in a second, with the standard library.

The CRT reports TLS failures as codes such as AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE, and an
untrusted broker certificate surfaces only after s2n's 10-30 s "blinding" delay. This check does
one TCP + TLS handshake with the same CA, certificate and key (no MQTT CONNECT is sent) and turns
the outcome into a sentence: broker certificate not trusted, hostname mismatch, client
certificate missing or refused, key not matching. It never decides connectivity: the MQTT client
keeps retrying on its own, and a fixed broker is picked up without a restart.
"""

from __future__ import annotations

import socket
import ssl

from .endpoint import MqttEndpoint

_REFUSED_CERT = ("certificate required", "bad certificate", "unknown ca", "certificate unknown",
                 "handshake failure", "access denied")


def diagnose_tls(ep: MqttEndpoint, timeout_s: float = 3.0) -> str | None:
    """A one-line reason the TLS handshake with ``ep`` fails, or None when it succeeds."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if ep.ca:
            ctx.load_verify_locations(cafile=str(ep.ca))
        else:
            ctx.load_default_certs()
        if ep.cert and ep.key:
            ctx.load_cert_chain(str(ep.cert), str(ep.key))
    except (ssl.SSLError, OSError) as exc:
        return f"cannot load ca={ep.ca} cert={ep.cert} key={ep.key}: {exc} (does the key match the certificate?)"
    try:
        with socket.create_connection((ep.host, ep.port), timeout=timeout_s) as raw, \
                ctx.wrap_socket(raw, server_hostname=ep.host) as tls:
            tls.settimeout(0.5)  # TLS 1.3: a refused client certificate arrives as an alert after the handshake
            try:
                data = tls.recv(1)
            except TimeoutError:
                return None
            if not data:
                return "the broker closed the connection right after the TLS handshake (client certificate refused?)"
            return None
    except ssl.SSLCertVerificationError as exc:
        where = f"ca={ep.ca}" if ep.ca else "the system trust store"
        return f"the broker's certificate is not trusted by {where}: {exc.verify_message}"
    except ssl.SSLError as exc:
        reason = (exc.reason or str(exc)).replace("_", " ").lower()
        if any(r in reason for r in _REFUSED_CERT):
            if not ep.cert:
                return f"the broker requires a client certificate ({reason}); none was given"
            return f"the broker refused the client certificate {ep.cert} ({reason})"
        return f"TLS handshake failed: {reason}"
    except OSError as exc:
        return f"cannot reach {ep.host}:{ep.port}: {exc.strerror or exc}"
