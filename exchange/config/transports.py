"""Transport configs, one model per delivery kind; ``TransportConfig`` is their union, told apart by ``kind``.

Secrets never appear as values here: configs name files (keys, certificates, known_hosts) and the names of
environment variables that hold passphrases, so a config can be logged or shown in Airflow's UI safely.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from exchange.config.base import Strict


class OutboxTransportConfig(Strict):
    """The embedded default transport: files in a local directory with a SHA-256 manifest."""

    kind: Literal["outbox"] = Field(description="Transport adapter: local outbox directory.")
    path: str = Field(description="Directory the recipient's messages are written to.")


class SftpTransportConfig(Strict):
    """Upload to the recipient's SFTP server: pinned host key, key auth, atomic rename, SHA-256 manifest."""

    kind: Literal["sftp"] = Field(description="Transport adapter: SFTP (paramiko).")
    host: str = Field(min_length=1, description="Server host name or address.")
    port: int = Field(22, ge=1, le=65535, description="Server port.")
    username: str = Field(min_length=1, description="Login name (key authentication only).")
    private_key: str = Field(description="File holding our SSH private key (mode 0600, never committed).")
    passphrase_env: str | None = Field(None, description="Environment variable holding the key's passphrase, "
                                                         "if it has one (the value is never in the YAML).")
    known_hosts: str = Field(description="known_hosts file pinning the server's host key; an unknown or "
                                         "changed key is refused.")
    remote_dir: str = Field(min_length=1, description="Directory on the server messages are delivered into.")
    connect_timeout: float = Field(15.0, gt=0, description="Seconds to connect and authenticate.")
    timeout: float = Field(60.0, gt=0, description="Seconds any one SFTP operation may take.")


class SoapTransportConfig(Strict):
    """Call the recipient's SOAP operation: WS-Security (timestamp + RSA-SHA256 signature), WS-Addressing,
    mutual TLS.

    With a ``connection:`` on the recipient, the connection may supply the endpoint (its host, port and an
    ``endpoint`` extra) and every file below (extras of the same names); what it supplies wins over the YAML,
    and what neither gives is refused. Without one, ``endpoint`` and the five key/certificate files are
    required here.
    """

    kind: Literal["soap"] = Field(description="Transport adapter: SOAP 1.1 document/literal (zeep).")
    endpoint: str | None = Field(None, pattern=r"^https://", description="The service address (https only).")
    wsdl: str | None = Field(None, description="WSDL file or URL; default: the project's WSDL in niem_iepd/wsdl.")
    client_certificate: str | None = Field(None, description="Our TLS client certificate (PEM) for mutual TLS.")
    client_key: str | None = Field(None, description="Our TLS client private key (PEM, mode 0600).")
    ca_bundle: str | None = Field(None, description="PEM CA bundle the server's TLS certificate must chain to.")
    signing_key: str | None = Field(None, description="Private key that signs the WS-Security header (PEM, "
                                                      "mode 0600).")
    signing_certificate: str | None = Field(None, description="Certificate sent with the WS-Security signature.")
    receipt_certificate: str | None = Field(None, description="The recipient's signing certificate; when set, "
                                                              "receipts must carry its valid signature.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to open the TLS connection.")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for the response.")

    def missing(self) -> list[str]:
        """The keys a recipient without a ``connection:`` must set but this config leaves out."""
        return [key for key in SOAP_REQUIRED if getattr(self, key) is None]


SOAP_REQUIRED = ("endpoint", "client_certificate", "client_key", "ca_bundle", "signing_key", "signing_certificate")
"""What a SOAP transport cannot work without (from the YAML or the recipient's connection)."""


class PullTransportConfig(Strict):
    """The recipient fetches its messages from us (``niem-exchange serve``: PullMessages, AcknowledgeMessage).

    Delivery passes leave its messages queued; a PullMessages call leases them to the recipient, an
    AcknowledgeMessage marks one delivered and writes the ledger entry. The recipient is recognised by both
    certificates below (pinned, compared byte for byte); anything else is refused.
    """

    kind: Literal["pull"] = Field(description="Transport adapter: the recipient pulls over our SOAP service.")
    client_certificate: str = Field(description="The recipient's mutual-TLS client certificate (PEM), as it "
                                                "presents it; it must also chain to the service's client CA.")
    signing_certificate: str = Field(description="The recipient's WS-Security signing certificate (PEM).")
    lease: int = Field(300, ge=1, le=86_400, description="Seconds a pulled message stays reserved for the "
                                                         "recipient; unacknowledged by then, it is offered again.")


TransportConfig = Annotated[
    Union[OutboxTransportConfig, SftpTransportConfig, SoapTransportConfig, PullTransportConfig],
    Field(discriminator="kind"),
]
"""Every transport kind a recipient may use."""
