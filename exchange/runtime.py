"""The composition root: turn a checked exchange config into a ready :class:`Exchange`.

This is the one place that knows concrete adapters (the jail CSV source, the local outbox). The CLI and the
Airflow DAGs both call :func:`open_exchange`, so both run exactly the same pipeline.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine

from exchange.config import ExchangeConfig, load_config, resolve, resolve_url
from exchange.disclosure import RecipientPolicy, load_policies
from exchange.ports import Source, Transport
from exchange.keystore import load_recipient_certificates, load_signing_identity
from exchange.security import RecipientCertificates, SigningIdentity
from exchange.state.db import open_engine
from exchange.state.outbox import Outbox
from exchange.state.person_index import PersonIndex, Thresholds
from exchange.state.quarantine import Quarantine
from exchange.state.secrets import load_or_create_secret
from exchange.state.windows import WindowStore
from exchange.wiring import build_source, build_transport
from transforms.model import ConfigError


def utc_now() -> datetime:
    """The default clock: aware UTC now."""
    return datetime.now(timezone.utc)


@dataclass
class Exchange:
    """Everything one exchange needs to run, already opened and checked."""

    config: ExchangeConfig
    home: Path
    engine: Engine
    source: Source
    persons: PersonIndex
    windows: WindowStore
    quarantine: Quarantine
    outbox: Outbox
    signer: SigningIdentity
    recipient_certs: dict[str, RecipientCertificates]  # recipient id -> its certificates (one or several)
    clock: Callable[[], datetime]
    transports: dict[str, Transport] = field(default_factory=dict)
    policies: dict[str, RecipientPolicy] = field(default_factory=dict)  # recipient id -> redaction profile
    credentials: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)

    def transport(self, recipient_id: str) -> Transport:
        """The transport of one recipient, built on first use (a failing one fails only its recipient)."""
        if recipient_id not in self.transports:
            recipient = next(r for r in self.config.recipients if r.id == recipient_id)
            self.transports[recipient_id] = build_transport(recipient.transport, recipient_id=recipient_id,
                                                            home=self.home, clock=self.clock,
                                                            credentials=self._credentials(recipient))
        return self.transports[recipient_id]

    def _credentials(self, recipient) -> Mapping[str, str] | None:
        """The values of the connection a recipient names (the front end resolved them; we never look)."""
        if recipient.connection is None:
            return None
        if recipient.connection not in self.credentials:
            raise ConfigError("exchange config", f"recipients.{recipient.id}.connection",
                              f"no credentials were given for connection {recipient.connection!r}",
                              f"under Airflow define the connection; on the command line set "
                              f"AIRFLOW_CONN_{recipient.connection.upper()} (Airflow's URI or JSON format)")
        return self.credentials[recipient.connection]

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


class _SourceNotOpened:
    """The source of an exchange opened with ``open_source=False``: reading records through it is refused."""

    system = "(not opened)"

    def __init__(self, config_path: str) -> None:
        self._config_path = config_path

    def plan(self, cursor: str | None, max_records: int) -> list:
        """Refuse: this process opened the exchange without its source."""
        raise ConfigError(self._config_path, "source", "this process opened the exchange without its source",
                          "run the exchange (niem-exchange run, or its DAG) to read records")

    def read(self, window) -> list:
        """Refuse, as :meth:`plan` does."""
        return self.plan(None, 0)


def open_exchange(
    config_path: Path,
    home: Path,
    *,
    clock: Callable[[], datetime] = utc_now,
    transports: Mapping[str, Transport] | None = None,
    credentials: Mapping[str, Mapping[str, str]] | None = None,
    open_source: bool = True,
) -> Exchange:
    """Load the config at ``config_path`` and open state, source, keys and certificates under ``home``.

    ``credentials`` maps a connection id that a recipient names (``connection:``) to its values (host, port,
    login, password, schema and the connection's extra keys), resolved by the front end (the DAGs read
    Airflow connections); exchange/ never reads a secrets store itself. ``open_source=False``: for processes
    that never read records nor build messages (``niem-exchange serve``, which only hands out messages already
    encrypted): the source is not opened (none of its credentials are needed) and the recipients' encryption
    certificates are not loaded (an expired one must not stop the pull service).
    """
    config = load_config(config_path)
    home = home.resolve()
    source = (build_source(config.source, home=home, now=clock(), config_path=config_path) if open_source
              else _SourceNotOpened(str(config_path)))
    signer = load_signing_identity(config_path, home, config.signing)
    certs = ({r.id: load_recipient_certificates(config_path, home, r, now=clock()) for r in config.recipients}
             if open_source else {})
    policies = load_policies(config, home, config_path)  # profile errors before any state is opened
    parameters = _matching_parameters(config_path, home, config.identity.model)
    engine = open_engine(resolve_url(home, config.state_url))
    name = config.name
    return Exchange(
        config=config,
        home=home,
        engine=engine,
        source=source,
        persons=PersonIndex(engine, load_or_create_secret(resolve(home, config.index_secret)), exchange=name,
                            thresholds=Thresholds(config.identity.link_threshold, config.identity.review_threshold),
                            parameters=parameters),
        windows=WindowStore(engine, name),
        quarantine=Quarantine(engine, name),
        outbox=Outbox(engine, name),
        signer=signer,
        recipient_certs=certs,
        clock=clock,
        transports=dict(transports or {}),
        policies=policies,
        credentials=dict(credentials or {}),
    )


def _matching_parameters(config_path: Path, home: Path, model: str | None):
    """The person index's scoring parameters from ``identity.model`` (None: the shipped model)."""
    if model is None:
        return None
    from exchange.identity.model import load_model, parameters_from_splink

    try:
        return parameters_from_splink(load_model(resolve(home, model).read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(str(config_path), "identity.model", f"cannot read the model ({exc.strerror})",
                          "run `niem-exchange identity train ... --out FILE` or fix the path") from None
    except ValueError as exc:
        raise ConfigError(str(config_path), "identity.model", str(exc),
                          "use a file written by `niem-exchange identity train`") from None
