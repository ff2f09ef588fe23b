"""Typed exchange configuration, loaded from YAML and checked before any I/O.

An exchange YAML names its source, message type, sender, recipients (each with a certificate, a transport,
a purpose and a legal basis) and where its state lives. Errors name the file, the key and the fix. Relative
paths resolve against the exchange *home* (the directory the CLI runs in, or ``--home``); the placeholder
``{demo_data}`` stands for the demo drop shipped inside the package.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from exchange.config.base import Slug, Strict
from exchange.config.identity import IdentityConfig
from exchange.config.inbound import InboundConfig
from exchange.config.orchestration import AirflowConfig, ConnectionId
from exchange.config.sources import SourceConfig
from exchange.config.transports import TransportConfig
from transforms.model import ConfigError


MessageType = Literal["BookingNotification", "ReleaseNotification", "CrisisContactReport", "BehavioralHealthAlert"]
"""The per-record message types (``transforms.mapping.BUILDERS``; a test keeps the two lists equal)."""


class RecipientConfig(Strict):
    """One party that receives this exchange's messages."""

    id: Slug = Field(description="Stable short id used in the outbox, ledger and task names.")
    organization: str = Field(min_length=1, description="The recipient's name as written in each message.")
    certificate: str | list[str] = Field(description="PEM certificate messages are encrypted to, or a list of "
                                         "them (e.g. old and new during the recipient's key rotation, or a primary "
                                         "and a disaster-recovery key): each message is encrypted once, with one "
                                         "EncryptedKey per certificate valid at the time; expired or not-yet-valid "
                                         "ones are skipped with a warning, and none valid refuses to encrypt.")
    transport: TransportConfig = Field(description="How messages reach the recipient.")
    purpose: str = Field(min_length=1, description="Purpose of the disclosure, as the ledger records it.")
    legal_basis: str = Field(min_length=1, description="Rule that permits the disclosure (e.g. a CFR cite).")
    profile: str = Field(min_length=1, description="Redaction profile: a shipped name (exchange/profiles/, e.g. "
                         "behavioral-health-provider) or a path to a profile YAML. Default-deny: only what the "
                         "profile allows leaves, and every recipient needs one.")
    classes: list[str] = Field(default_factory=list, description="Extra recipient classes consents may name "
                               "as class:<name> (the profile's class always counts).")
    connection: ConnectionId | None = Field(None, description="Airflow connection id (or secrets-backend "
                                            "key) holding the transport's credentials; never secrets here.")

    @field_validator("certificate")
    @classmethod
    def _certificate_list(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("list at least one certificate")
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("a certificate is listed twice")
        return value

    @property
    def certificates(self) -> tuple[str, ...]:
        """``certificate`` as a tuple of paths, whether the YAML gave one or a list."""
        return (self.certificate,) if isinstance(self.certificate, str) else tuple(self.certificate)

    @model_validator(mode="after")
    def _soap_complete(self) -> "RecipientConfig":
        # a SOAP recipient may take its endpoint and files from its connection; without one, the YAML must
        # name them all (checked here, before any I/O, rather than at the first delivery)
        missing = self.transport.missing() if self.transport.kind == "soap" and self.connection is None else []
        if missing:
            raise ValueError(f"transport.{missing[0]} is required for a soap transport without a connection")
        return self


class SigningConfig(Strict):
    """Our signing key and certificate, and where the key's passphrase comes from (never the YAML itself)."""

    key: str = Field(description="Private key: PEM (mode 0600, never committed; passphrase-protected or not) or "
                     "PKCS#12 by its .p12/.pfx suffix (key and certificate in one file).")
    certificate: str | None = Field(None, description="PEM certificate that receivers pin to verify our "
                                    "signatures; optional for a PKCS#12 key (its own certificate is used).")
    passphrase_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Name of the "
                                       "environment variable holding the key's passphrase.")
    passphrase_file: str | None = Field(None, description="File holding the key's passphrase (one line, e.g. "
                                        "a mounted secret); use this or passphrase_env, not both.")

    @model_validator(mode="after")
    def _one_passphrase_source(self) -> "SigningConfig":
        if self.passphrase_env is not None and self.passphrase_file is not None:
            raise ValueError("name the passphrase in passphrase_env or passphrase_file, not both")
        if self.certificate is None and not self.key.lower().endswith((".p12", ".pfx")):
            raise ValueError("certificate is required unless key is a PKCS#12 file (.p12/.pfx)")
        return self


class ExchangeConfig(Strict):
    """One exchange: a source, a message type and its recipients."""

    name: Slug = Field(description="Exchange name; also the Airflow DAG id.")
    message_type: MessageType = Field(description="IEPD message type built per record.")
    sender: str = Field(min_length=1, description="Our organization's name, as written in each message.")
    source: SourceConfig
    recipients: list[RecipientConfig] = Field(min_length=1)
    signing: SigningConfig
    state_url: str = Field("sqlite:///var/state.db", description="SQLAlchemy URL of the exchange state.")
    index_secret: str = Field("var/index.secret", description="File holding the person-index HMAC secret.")
    identity: IdentityConfig = Field(default_factory=IdentityConfig, description="Person-matching thresholds.")
    batch_size: int = Field(500, ge=1, le=100_000, description="Most records per window.")
    max_attempts: int = Field(5, ge=1, description="Delivery attempts before a message is dead-lettered.")
    schedule: str | None = Field(None, description="Airflow schedule (cron or preset); None: manual only.")
    inbound: InboundConfig = Field(default_factory=InboundConfig, description="Our SOAP service for this "
                                   "exchange (`niem-exchange serve`; see exchange/config/inbound.py).")
    airflow: AirflowConfig = Field(default_factory=AirflowConfig, description="Retries, timeouts, alerts "
                                   "and assets for the Airflow DAG (see exchange/config/orchestration.py).")

    @field_validator("recipients")
    @classmethod
    def _unique_recipients(cls, value: list[RecipientConfig]) -> list[RecipientConfig]:
        ids = [r.id for r in value]
        if len(ids) != len(set(ids)):
            raise ValueError("recipient ids must be unique")
        return value


def demo_data_dir() -> Path:
    """The demo JMS drop shipped in the package."""
    return Path(str(resources.files("exchange.demo")))


def resolve(home: Path, value: str) -> Path:
    """Resolve a configured path against the exchange home (``{demo_data}`` -> the packaged demo drop)."""
    if "{demo_data}" in value:
        return Path(value.replace("{demo_data}", str(demo_data_dir())))
    path = Path(value).expanduser()
    return path if path.is_absolute() else home / path


def resolve_url(home: Path, url: str) -> str:
    """Make a relative SQLite URL absolute against the exchange home; other URLs pass through."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(home / url.removeprefix(prefix))
    return url


def load_config(path: Path) -> ExchangeConfig:
    """Read and check an exchange YAML; every problem is a ConfigError naming file, key and fix."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "(file)", "does not exist", "pass the path of an exchange YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ConfigError(str(path), where, "is not valid YAML", "check indentation and quoting") from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "(file)", "must be a mapping of keys", "start from exchange/demo/demo-exchange.yaml")
    try:
        return ExchangeConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):  # name the discriminator itself
            loc.append(str(first.get("ctx", {}).get("discriminator", "kind")).strip("'"))
        key = ".".join(loc) or "(top)"
        fix = {
            "missing": "add this key",
            "extra_forbidden": "remove it or check its spelling",
        }.get(first["type"], "see the allowed values in exchange/config.py or the README")
        raise ConfigError(str(path), key, first["msg"].lower(), fix) from None
