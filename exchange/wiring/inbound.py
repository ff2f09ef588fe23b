"""Exchange config -> the inbound SOAP service's settings (``niem-exchange serve``).

Kept out of ``exchange.wiring``'s package namespace on purpose: it needs an opened :class:`Exchange`, and
``exchange.runtime`` imports that package.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from adapters.inbound import InboundSettings, PullRecipient
from exchange.config import resolve
from transforms.model import ConfigError

if TYPE_CHECKING:
    from exchange.runtime import Exchange


def pull_recipients(ex: Exchange) -> tuple[PullRecipient, ...]:
    """The exchange's ``kind: pull`` recipients with their pinned certificate files."""
    return tuple(PullRecipient(r.id, resolve(ex.home, r.transport.client_certificate),
                               resolve(ex.home, r.transport.signing_certificate))
                 for r in ex.config.recipients if r.transport.kind == "pull")


def inbound_settings(ex: Exchange, config_path: Path, *, public_url: str) -> InboundSettings:
    """Everything the service needs, every file checked to exist (a ConfigError naming the key if not).

    ``public_url`` is used when the ``inbound:`` block names none. Pull recipients are served from the
    exchange's outbox (:class:`exchange.pickup.OutboxMailbox`).
    """
    from exchange.pickup import OutboxMailbox

    inbound = ex.config.inbound
    files: dict[str, Path] = {
        "inbound.signing_key": resolve(ex.home, inbound.signing_key or ex.config.signing.key),
        "inbound.signing_certificate": resolve(ex.home, inbound.signing_certificate or ex.config.signing.certificate),
    }
    files.update({f"inbound.vendors.{n}": resolve(ex.home, v) for n, v in enumerate(inbound.vendors)})
    recipients = pull_recipients(ex)
    for recipient in recipients:
        files[f"recipients.{recipient.id}.transport.client_certificate"] = recipient.tls_certificate
        files[f"recipients.{recipient.id}.transport.signing_certificate"] = recipient.signing_certificate
    for key, path in files.items():
        if not path.is_file():
            raise ConfigError(str(config_path), key, f"file {str(path)!r} not found", "fix the path")
    return InboundSettings(
        store=resolve(ex.home, inbound.store or f"var/inbound/{ex.config.name}"),
        signing_key=files["inbound.signing_key"], signing_certificate=files["inbound.signing_certificate"],
        trusted_signers=tuple(resolve(ex.home, v) for v in inbound.vendors), clock=ex.clock,
        public_url=inbound.public_url or public_url, path=inbound.path, max_bytes=inbound.max_bytes,
        mailbox=OutboxMailbox(ex) if recipients else None, pull_recipients=recipients, max_pull=inbound.max_pull,
        max_pull_bytes=inbound.max_pull_bytes,
    )
