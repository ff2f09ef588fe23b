"""Source configs of every new kind parse from YAML-shaped dicts and wire to their adapters."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from adapters.sources.fhir import FhirBundleSource, FhirNdjsonSource
from adapters.sources.fhir_rest import FhirRestSource
from adapters.sources.hl7v2 import Hl7v2FileSource
from adapters.sources.nibrs import NibrsFlatFileSource, NibrsXmlSource
from adapters.sources.rms_sql import RmsSqlSource
from exchange.config.sources import SourceConfig
from exchange.wiring import build_source
from transforms.model import ConfigError

NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
PARSE = TypeAdapter(SourceConfig).validate_python


def _build(raw: dict, home: Path):
    return build_source(PARSE(raw), home=home, now=NOW, config_path=home / "x.yaml")


def test_each_kind_wires_to_its_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "export").mkdir()
    rms = _build({"kind": "rms_sql", "url": "sqlite:///rms.db", "table": "calls", "record_kind": "crisis_contact",
                  "columns": {"incident_number": "CALL_NO"}, "timezone": "America/Chicago"}, tmp_path)
    assert isinstance(rms, RmsSqlSource) and str(rms.engine.url) == f"sqlite:///{tmp_path / 'rms.db'}"
    monkeypatch.setenv("RMS_URL", f"sqlite:///{tmp_path / 'other.db'}")
    assert isinstance(_build({"kind": "rms_sql", "url_env": "RMS_URL", "table": "t", "record_kind": "arrest"},
                             tmp_path), RmsSqlSource)
    assert isinstance(_build({"kind": "fhir_bundle", "path": "export"}, tmp_path), FhirBundleSource)
    assert isinstance(_build({"kind": "fhir_ndjson", "path": "export"}, tmp_path), FhirNdjsonSource)
    assert isinstance(_build({"kind": "fhir_rest", "url": "https://ehr.example.org/fhir"}, tmp_path), FhirRestSource)
    assert isinstance(_build({"kind": "hl7v2", "path": "export", "timezone": "America/New_York"}, tmp_path),
                      Hl7v2FileSource)
    assert isinstance(_build({"kind": "nibrs_flat", "path": "export"}, tmp_path), NibrsFlatFileSource)
    assert isinstance(_build({"kind": "nibrs_xml", "path": "export"}, tmp_path), NibrsXmlSource)


def test_config_mistakes_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="exactly one of url and url_env"):
        PARSE({"kind": "rms_sql", "table": "t", "record_kind": "arrest"})
    with pytest.raises(ConfigError, match="source.timezone"):
        _build({"kind": "rms_sql", "url": "sqlite:///x.db", "table": "t", "record_kind": "arrest",
                "timezone": "Mars/Olympus"}, tmp_path)
    with pytest.raises(ConfigError, match="source.url_env"):
        _build({"kind": "rms_sql", "url_env": "NIEM_TEST_UNSET_VAR", "table": "t", "record_kind": "arrest"}, tmp_path)
    with pytest.raises(ConfigError, match="plain http"):
        _build({"kind": "fhir_rest", "url": "http://ehr.example.org/fhir"}, tmp_path)
    with pytest.raises(ConfigError, match="source.auth.private_key"):
        _build({"kind": "fhir_rest", "url": "https://ehr.example.org/fhir",
                "auth": {"token_url": "https://ehr.example.org/token", "client_id": "c", "private_key": "none.pem",
                         "key_id": "k"}}, tmp_path)
