"""Source config -> source adapter."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from adapters.sources.jail_csv import JailCsvSource
from exchange.config import resolve
from exchange.config.sources import (
    FhirBundleSourceConfig,
    FhirNdjsonSourceConfig,
    FhirRestSourceConfig,
    Hl7v2SourceConfig,
    JailCsvSourceConfig,
    NibrsSourceConfig,
    RmsSqlSourceConfig,
    SourceConfig,
)
from exchange.ports import Source
from transforms.model import ConfigError


def build_source(config: SourceConfig, *, home: Path, now: datetime, config_path: Path) -> Source:
    """Open the adapter a source config names; a missing drop directory is a ConfigError."""
    if isinstance(config, JailCsvSourceConfig):
        directory = resolve(home, config.path)
        if config.pull is not None:
            directory.mkdir(parents=True, exist_ok=True)  # the pull fills it
        if not directory.is_dir():
            raise ConfigError(str(config_path), "source.path", "is not a directory", "create the drop directory")
        jail = JailCsvSource(directory, system=config.system, columns=config.columns or None,
                             delimiter=config.delimiter, today=now.date())
        if config.pull is not None:
            from exchange.wiring.source_adapters import pull_before_plan

            return pull_before_plan(config.pull, directory, jail, home=home, config_path=config_path)
        return jail
    if isinstance(config, (RmsSqlSourceConfig, FhirBundleSourceConfig, FhirNdjsonSourceConfig,
                           FhirRestSourceConfig, Hl7v2SourceConfig, NibrsSourceConfig)):
        from exchange.wiring.source_adapters import build_record_source

        return build_record_source(config, home=home, now=now, config_path=config_path)
    raise ConfigError(str(config_path), "source.kind", f"no adapter for {config.kind!r}", "use a listed kind")
