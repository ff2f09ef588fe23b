"""Source configs of the RMS, EHR and NIBRS kinds -> their adapters (the jail drop is wired in ``sources``).

Kept apart from :mod:`exchange.wiring.sources` so that opening a jail exchange imports neither httpx nor the
FHIR mapping. Secrets come from files and environment variables the config names, never from the YAML.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exchange.config import resolve, resolve_url
from exchange.config.sources import (
    FhirBundleSourceConfig,
    FhirNdjsonSourceConfig,
    FhirRestSourceConfig,
    Hl7v2SourceConfig,
    NibrsSourceConfig,
    RmsSqlSourceConfig,
    SftpPullConfig,
)
from exchange.ports import Source
from transforms.model import ConfigError

RecordSourceConfig = (RmsSqlSourceConfig | FhirBundleSourceConfig | FhirNdjsonSourceConfig | FhirRestSourceConfig
                      | Hl7v2SourceConfig | NibrsSourceConfig)


def build_record_source(config: RecordSourceConfig, *, home: Path, now: datetime, config_path: Path) -> Source:
    """Open the adapter of an RMS SQL, FHIR bundle, FHIR NDJSON or FHIR REST source config."""
    where = str(config_path)
    if isinstance(config, RmsSqlSourceConfig):
        from adapters.sources.rms_sql import RmsSqlSource

        url = config.url
        if config.url_env is not None:
            url = os.environ.get(config.url_env)
            if not url:
                raise ConfigError(where, "source.url_env", f"the environment variable {config.url_env} is not set",
                                  "export it with the database URL")
        zone = _zone(config.timezone, where)
        return RmsSqlSource(resolve_url(home, url or ""), table_name=config.table, schema=config.db_schema,
                            record_kind=config.record_kind, today=now.date(), system=config.system,
                            columns=config.columns or None, key_column=config.key_column,
                            codes=config.codes or None, default_tz=zone, require_names=config.require_names)
    if isinstance(config, FhirBundleSourceConfig):
        from adapters.sources.fhir import FhirBundleSource

        path = resolve(home, config.path)
        if not path.exists():
            raise ConfigError(where, "source.path", "does not exist", "give a bundle file or directory")
        return FhirBundleSource(path, today=now.date(), system=config.system)
    if isinstance(config, FhirNdjsonSourceConfig):
        from adapters.sources.fhir import FhirNdjsonSource

        path = resolve(home, config.path)
        if not path.is_dir():
            raise ConfigError(where, "source.path", "is not a directory", "give the export directory")
        return FhirNdjsonSource(path, today=now.date(), system=config.system)
    if isinstance(config, FhirRestSourceConfig):
        import httpx

        from adapters.sources.fhir_rest import FhirRestSource, SmartBackendAuth

        verify: object = True
        if config.ca_bundle:
            import ssl

            verify = ssl.create_default_context(cafile=str(resolve(home, config.ca_bundle)))
        client = httpx.Client(timeout=30.0, verify=verify)  # type: ignore[arg-type]
        auth = None
        if config.auth is not None:
            key_path = resolve(home, config.auth.private_key)
            try:
                key = key_path.read_bytes()
            except OSError:
                raise ConfigError(where, "source.auth.private_key", "cannot be read",
                                  "give the PEM file of the client's private key") from None
            auth = SmartBackendAuth(config.auth.token_url, config.auth.client_id, key, key_id=config.auth.key_id,
                                    algorithm=config.auth.algorithm, scope=config.auth.scope)
        return FhirRestSource(config.url, today=now.date(), system=config.system, client=client, auth=auth,
                              page_size=config.page_size, lag=timedelta(seconds=config.lag_seconds))
    if isinstance(config, Hl7v2SourceConfig):
        import codecs

        from adapters.sources.hl7v2 import Hl7v2FileSource

        path = resolve(home, config.path)
        if not path.exists():
            raise ConfigError(where, "source.path", "does not exist", "give the drop directory")
        try:
            codecs.lookup(config.encoding)
        except LookupError:
            raise ConfigError(where, "source.encoding", "is not a known character encoding",
                              "use utf-8 or latin-1") from None
        return Hl7v2FileSource(path, today=now.date(), system=config.system, pattern=config.pattern,
                               default_tz=_zone(config.timezone, where), encoding=config.encoding)
    if isinstance(config, NibrsSourceConfig):
        from adapters.sources.nibrs import NibrsFlatFileSource, NibrsXmlSource

        path = resolve(home, config.path)
        if not path.exists():
            raise ConfigError(where, "source.path", "does not exist", "give the drop directory")
        if config.kind == "nibrs_flat":
            return NibrsFlatFileSource(path, system=config.system)
        return NibrsXmlSource(path, system=config.system)
    raise ConfigError(where, "source.kind", f"no adapter for {config.kind!r}", "use a listed kind")


def pull_before_plan(config: SftpPullConfig, directory: Path, inner: Source, *, home: Path,
                     config_path: Path) -> Source:
    """Wrap a local drop source so each plan first pulls new files from the SFTP server into ``directory``."""
    from adapters.sources.sftp_drop import PulledDropSource, SftpDropPuller, SftpPullSettings

    passphrase = None
    if config.passphrase_env:
        passphrase = os.environ.get(config.passphrase_env)
        if passphrase is None:
            raise ConfigError(str(config_path), "source.pull.passphrase_env",
                              f"the environment variable {config.passphrase_env} is not set", "export it")
    settings = SftpPullSettings(
        host=config.host, port=config.port, username=config.username,
        private_key=resolve(home, config.private_key), known_hosts=resolve(home, config.known_hosts),
        remote_dir=config.remote_dir, pattern=config.pattern, after=config.after, archive_dir=config.archive_dir,
        settle_seconds=config.settle_seconds, ready_suffix=config.ready_suffix, passphrase=passphrase)
    return PulledDropSource(SftpDropPuller(settings), directory, inner)  # type: ignore[arg-type]


def _zone(name: str | None, where: str) -> ZoneInfo | None:
    """The IANA zone a config names (None when it names none)."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(where, "source.timezone", "is not a known IANA time zone",
                          "use a name such as America/Chicago") from None
