"""Mutual TLS under uvicorn, with the caller's client certificate handed to the app.

uvicorn checks the client certificate against ``client_ca`` (``ssl_cert_reqs=CERT_REQUIRED``) but does not
tell the application which certificate it was. Recipients that pull their messages are identified by that
certificate, so :class:`PeerCertificateProtocol` (uvicorn's HTTP protocol, plus one step when a connection is
made) reads it from the TLS connection and puts it into each request's scope the way the ASGI TLS extension
defines it: ``scope["extensions"]["tls"]["client_cert_chain"]`` = ``[<PEM of the client's certificate>]``.
Any ASGI server that implements that extension works with the app unchanged.
"""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol


def client_certificate(scope: dict[str, Any]) -> bytes | None:
    """DER of the client certificate the TLS layer verified for this request (None: none was presented)."""
    chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain") or []
    if not chain:
        return None
    return ssl.PEM_cert_to_DER_cert(chain[0])


def _with_client_certificate(app, der: bytes | None):
    """Wrap ``app`` so every HTTP request on this connection carries the ASGI TLS extension."""
    pem = ssl.DER_cert_to_PEM_cert(der) if der else None

    async def wrapped(scope, receive, send) -> None:
        if scope["type"] == "http":
            extensions = dict(scope.get("extensions") or {})
            extensions["tls"] = {"server_cert": None, "client_cert_chain": [pem] if pem else [],
                                 "client_cert_name": None, "client_cert_error": None,
                                 "tls_version": None, "cipher_suite": None}
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return wrapped


class PeerCertificateProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP/1.1 protocol that exposes the verified client certificate to the app (see module doc)."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        """Called once per connection, after the TLS handshake: remember the peer's certificate."""
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.app = _with_client_certificate(self.app, der)


def server_config(app, *, host: str, port: int, certificate: Path, key: Path, client_ca: Path,
                  log_level: str = "warning", **options: Any):
    """A ``uvicorn.Config`` serving ``app`` over TLS that requires a client certificate issued by ``client_ca``."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, ssl_certfile=str(certificate), ssl_keyfile=str(key),
                          ssl_ca_certs=str(client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED, log_level=log_level,
                          access_log=False, http=PeerCertificateProtocol, **options)
