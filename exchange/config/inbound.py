"""The optional ``inbound:`` block of an exchange YAML: our SOAP service (``niem-exchange serve``).

One service per exchange: vendors submit messages to it (SubmitMessage) and the exchange's ``kind: pull``
recipients fetch theirs from it (PullMessages, AcknowledgeMessage). Every key has a default, so an exchange
with pull recipients can be served without this block as long as the TLS files are given on the command line.
Paths resolve against the exchange home like every other path; secrets are files, never values.
"""
from __future__ import annotations

from pydantic import Field

from exchange.config.base import Strict


class InboundConfig(Strict):
    """Where the service stores submissions, whom it trusts, and the TLS files it serves with."""

    public_url: str | None = Field(None, pattern=r"^https://", description="The address callers use (written "
                                   "into the WSDL served at ?wsdl); default https://<host>:<port><path>.")
    path: str = Field("/soap/exchange", pattern=r"^/", description="URL path of the service.")
    store: str | None = Field(None, description="Directory accepted submissions are stored in; default "
                              "var/inbound/<exchange name>.")
    vendors: list[str] = Field(default_factory=list, description="Pinned WS-Security signing certificates (PEM) "
                               "of the vendors allowed to call SubmitMessage; none: SubmitMessage is refused.")
    signing_key: str | None = Field(None, description="Key that signs our responses (RSA, PEM); default: the "
                                    "exchange's signing key.")
    signing_certificate: str | None = Field(None, description="Certificate callers pin to check our responses; "
                                            "default: the exchange's signing certificate.")
    tls_certificate: str | None = Field(None, description="Server TLS certificate (PEM); `serve --certfile` "
                                        "overrides it.")
    tls_key: str | None = Field(None, description="Server TLS private key (PEM, mode 0600); `serve --keyfile` "
                                "overrides it.")
    client_ca: str | None = Field(None, description="CA bundle client certificates must chain to (mutual TLS "
                                  "is always required); `serve --client-ca` overrides it.")
    max_pull: int = Field(100, ge=1, le=1000, description="Most messages one PullMessages call returns.")
    max_pull_bytes: int = Field(16_000_000, ge=100_000, description="Most payload bytes one PullMessages "
                                "response carries (base64 adds a third); the oldest waiting message is "
                                "returned whatever its size.")
    max_bytes: int = Field(20_000_000, ge=10_000, description="Largest request accepted, in bytes.")
