"""Source configs, one model per adapter kind; ``SourceConfig`` is their union, told apart by ``kind``."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from exchange.config.base import Slug, Strict


class SftpPullConfig(Strict):
    """Pull the drop from an SFTP server before each run: pinned host key, key auth, settled files only."""

    host: str = Field(min_length=1, description="Server host name or address.")
    port: int = Field(22, ge=1, le=65535, description="Server port.")
    username: str = Field(min_length=1, description="Login name (key authentication only).")
    private_key: str = Field(description="File holding our SSH private key (mode 0600, never committed).")
    passphrase_env: str | None = Field(None, description="Environment variable holding the key's passphrase.")
    known_hosts: str = Field(description="known_hosts file pinning the server's host key.")
    remote_dir: str = Field(min_length=1, description="Directory on the server the JMS writes into.")
    pattern: str = Field("*.csv", description="Remote file names to pull.")
    after: Literal["archive", "mark"] = Field("archive", description="After pulling: move the file into "
                                              "archive_dir, or rename it to <name>.processed.")
    archive_dir: str = Field("archive", description="Archive directory (relative to remote_dir unless absolute).")
    settle_seconds: float = Field(5.0, ge=0, description="A file must keep its size and time this long "
                                                         "before it is pulled (still being written otherwise).")
    ready_suffix: str = Field("", description="If set (e.g. .ok), pull a file only once <name><suffix> exists.")


class JailCsvSourceConfig(Strict):
    """A JMS file drop: a directory of bookings (and booking charges) CSV or pipe-delimited files."""

    kind: Literal["jail_csv"] = Field(description="Source adapter: a jail CSV file drop.")
    path: str = Field(description="Directory of the drop, relative to the exchange home.")
    system: Slug = Field("jail", description="Name of the source system in crosswalks and references.")
    columns: dict[str, str] = Field(default_factory=dict, description="Our field name -> the county's column.")
    delimiter: Literal[",", "|"] | None = Field(None, description="Field delimiter; sniffed when absent.")
    pull: SftpPullConfig | None = Field(None, description="Pull the drop from an SFTP server into path first.")


class RmsSqlSourceConfig(Strict):
    """An RMS table or view of crisis contacts or arrests, read incrementally through SQLAlchemy."""

    kind: Literal["rms_sql"] = Field(description="Source adapter: an RMS database table or view.")
    url: str | None = Field(None, description="SQLAlchemy URL without a password (sqlite:///rms.db is relative "
                                              "to the exchange home); or use url_env.")
    url_env: str | None = Field(None, description="Environment variable holding the URL (when it has a password).")
    table: str = Field(min_length=1, description="Table or view name.")
    db_schema: str | None = Field(None, description="Database schema of the table (default: the user's).")
    record_kind: Literal["crisis_contact", "arrest"] = Field(description="What each row is.")
    system: Slug = Field("rms", description="Name of the source system in crosswalks and references.")
    columns: dict[str, str] = Field(default_factory=dict, description="Our field name -> the view's column "
                                    "(see transforms/model/rms.py for the field names).")
    key_column: str | None = Field(None, description="The view's primary key (cursor tie-break); default: the "
                                                     "column of incident_number / arrest_number.")
    codes: dict[str, dict[str, str]] = Field(default_factory=dict, description="Extra county codes per coded "
                                             "field: {disposition: {TRANS-ER: EMERGENCY_ROOM}}.")
    timezone: str | None = Field(None, description="IANA zone of timestamps stored without an offset "
                                                   "(e.g. America/Chicago); such rows are rejected when absent.")
    require_names: bool = Field(True, description="false: read arrests without names (de-identified extracts; "
                                                  "counted and mapped, never linked to a person).")

    @model_validator(mode="after")
    def _one_url(self) -> RmsSqlSourceConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        return self


class FhirBundleSourceConfig(Strict):
    """FHIR R4 Bundles: a JSON file or a directory of them (one window per file)."""

    kind: Literal["fhir_bundle"] = Field(description="Source adapter: FHIR Bundle files.")
    path: str = Field(description="Bundle file or directory of *.json bundles, relative to the exchange home.")
    system: Slug = Field("ehr", description="Name of the source system in crosswalks and references.")


class FhirNdjsonSourceConfig(Strict):
    """A FHIR Bulk Data $export directory of NDJSON files (Patient.ndjson, Condition.ndjson, ...)."""

    kind: Literal["fhir_ndjson"] = Field(description="Source adapter: FHIR Bulk Data NDJSON export.")
    path: str = Field(description="Export directory, relative to the exchange home.")
    system: Slug = Field("ehr", description="Name of the source system in crosswalks and references.")


class SmartAuthConfig(Strict):
    """SMART Backend Services: a JWT client assertion signed with our key, exchanged for an access token."""

    token_url: str = Field(description="The server's OAuth token endpoint (https).")
    client_id: str = Field(min_length=1, description="Our client id, registered at the server.")
    private_key: str = Field(description="PEM file of the private key registered for the client (mode 0600).")
    key_id: str = Field(min_length=1, description="The key's id (kid) in the JWKS registered at the server.")
    algorithm: Literal["RS384", "ES384"] = Field("RS384", description="JWT signing algorithm.")
    scope: str = Field("system/*.read", description="OAuth scopes requested.")


class FhirRestSourceConfig(Strict):
    """A FHIR R4 REST server read incrementally by _lastUpdated, with next-link paging."""

    kind: Literal["fhir_rest"] = Field(description="Source adapter: FHIR REST API.")
    url: str = Field(description="FHIR base URL (https; http only to a loopback address).")
    system: Slug = Field("ehr", description="Name of the source system in crosswalks and references.")
    auth: SmartAuthConfig | None = Field(None, description="SMART Backend Services auth; none: no token sent.")
    ca_bundle: str | None = Field(None, description="PEM CA bundle for the server's certificate (default: the "
                                                    "system store). Verification is always on.")
    page_size: int = Field(100, ge=1, le=1000, description="_count per search page.")
    lag_seconds: int = Field(30, ge=0, description="Sync up to now minus this many seconds (late commits).")


class Hl7v2SourceConfig(Strict):
    """HL7 v2 ADT messages (A01/A03/A04/A08/A28/A31, A40 merges) dropped as files by an interface engine."""

    kind: Literal["hl7v2"] = Field(description="Source adapter: HL7 v2 ADT file drop.")
    path: str = Field(description="Drop directory (or one file), relative to the exchange home.")
    system: Slug = Field("ehr-adt", description="Name of the source system in crosswalks and references.")
    pattern: str = Field("*.hl7", description="File names to read.")
    timezone: str | None = Field(None, description="IANA zone of times sent without an offset; such messages "
                                                   "are rejected when absent.")
    encoding: str = Field("utf-8", description="Character encoding of the files (MSH-18).")


class NibrsSourceConfig(Strict):
    """NIBRS exports of an agency's RMS: legacy flat files or NIBRS IEPD XML (arrestees -> Arrest records)."""

    kind: Literal["nibrs_flat", "nibrs_xml"] = Field(description="Source adapter: NIBRS flat file or XML.")
    path: str = Field(description="Drop directory (or one file), relative to the exchange home.")
    system: Slug = Field("nibrs", description="Name of the source system in crosswalks and references.")


SourceConfig = Annotated[
    Union[JailCsvSourceConfig, RmsSqlSourceConfig, FhirBundleSourceConfig, FhirNdjsonSourceConfig,
          FhirRestSourceConfig, Hl7v2SourceConfig, NibrsSourceConfig],
    Field(discriminator="kind"),
]
"""Every source kind an exchange YAML may name."""
