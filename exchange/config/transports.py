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
    mutual TLS."""

    kind: Literal["soap"] = Field(description="Transport adapter: SOAP 1.1 document/literal (zeep).")
    endpoint: str = Field(pattern=r"^https://", description="The service address (https only).")
    wsdl: str | None = Field(None, description="WSDL file or URL; default: the project's WSDL in niem_iepd/wsdl.")
    client_certificate: str = Field(description="Our TLS client certificate (PEM) for mutual TLS.")
    client_key: str = Field(description="Our TLS client private key (PEM, mode 0600).")
    ca_bundle: str = Field(description="PEM CA bundle the server's TLS certificate must chain to.")
    signing_key: str = Field(description="Private key that signs the WS-Security header (PEM, mode 0600).")
    signing_certificate: str = Field(description="Certificate sent with the WS-Security signature.")
    receipt_certificate: str | None = Field(None, description="The recipient's signing certificate; when set, "
                                                              "receipts must carry its valid signature.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to open the TLS connection.")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for the response.")


TransportConfig = Annotated[
    Union[OutboxTransportConfig, SftpTransportConfig, SoapTransportConfig], Field(discriminator="kind")
]
"""Every transport kind a recipient may use."""
