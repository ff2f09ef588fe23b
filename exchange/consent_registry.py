"""The consent registry: consents on file, loaded from FHIR Consent resources or a CSV, read per record.

Loading a file replaces every consent that file gave before (a consent removed from the file, or marked
revoked there, stops counting); the pipeline reads the registry for each record, so a revocation loaded
before a run takes effect in that run. The registry stores the 42 CFR 2.31 elements the decision needs
(:class:`transforms.model.ConsentRecord`), never the patient's name, and the patient's reference only as a
keyed hash (see :class:`ConsentRegistry`); an older table holding references in clear is migrated on first use.

FHIR: R4 Consent read with ``fhir.resources`` (R4B models). A tolerant reader: R4 requires ``scope``, but
real fixtures put the scope code in ``category`` (an R5 layout); we copy it over before validating.
Recipients are the ``IRCP`` (information recipient) actors of ``permit`` provisions, minus those of
``deny`` provisions; ``Organization/<id>`` names recipient ``<id>``, and an actor identifier in
:data:`CLASS_SYSTEM` names a class (``class:law-enforcement``).
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, MetaData, Table, delete, insert, inspect, select, text, update
from sqlalchemy.exc import OperationalError, ProgrammingError

from exchange.state.db import consents as consents_table
from exchange.state.db import crosswalk
from transforms.model import ConsentRecord, RecordError, SourceRef

CLASS_SYSTEM = "urn:niem-exchange:recipient-class"
SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
PART2_CODES = frozenset({"42CFRPart2", "42CFRPART2"})
CSV_COLUMNS = ("consent_id", "patient_id", "discloser", "recipients", "purpose", "information", "status",
               "signed_on", "expires_on", "revoked_on", "part2", "expiry_event")


@dataclass(frozen=True, slots=True)
class Loaded:
    """What one load did: consents read, and files or rows set aside with the field and the reason."""

    consents: tuple[ConsentRecord, ...]
    rejected: tuple[RecordError, ...]


def read_fhir(paths: Iterable[Path]) -> Loaded:
    """Read FHIR Consent JSON files (one resource each, or a Bundle of them)."""
    from fhir.resources.R4B.consent import Consent

    good: list[ConsentRecord] = []
    bad: list[RecordError] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            bad.append(RecordError(path.name, "(file)", "not readable JSON"))
            continue
        resources = [e.get("resource", {}) for e in raw.get("entry", [])] if raw.get("resourceType") == "Bundle" \
            else [raw]
        for index, resource in enumerate(resources):
            where = path.name if len(resources) == 1 else f"{path.name}#entry={index}"
            if resource.get("resourceType") != "Consent":
                bad.append(RecordError(where, "resourceType", "is not Consent"))
                continue
            resource = _tolerate_scope(resource)
            try:
                parsed = Consent.model_validate(resource)
            except ValueError as exc:  # pydantic's ValidationError; its text may quote values, so not kept
                loc = getattr(exc, "errors", lambda: [{}])()[0].get("loc", ("(resource)",))
                bad.append(RecordError(where, ".".join(str(p) for p in loc), "not a valid FHIR R4 Consent"))
                continue
            try:
                record = _from_fhir(parsed, where)
            except RecordError as error:
                bad.append(error)
                continue
            if record.consent_id in seen:
                bad.append(RecordError(where, "identifier", f"same consent id as {seen[record.consent_id]}"))
                continue
            seen[record.consent_id] = where
            good.append(record)
    return Loaded(tuple(good), tuple(bad))


def _tolerate_scope(resource: dict) -> dict:
    if "scope" in resource:
        return resource
    for concept in resource.get("category", []):
        for coding in concept.get("coding", []):
            if coding.get("system") == SCOPE_SYSTEM:
                return {**resource, "scope": {"coding": [coding]}}
    return resource


def _from_fhir(consent, where: str) -> ConsentRecord:
    if consent.patient is None or not consent.patient.reference:
        raise RecordError(where, "patient", "missing: a consent must name the patient (42 CFR 2.31(a)(1))")
    consent_id = consent.id or next((i.value for i in consent.identifier or [] if i.value), "")
    if not consent_id:
        raise RecordError(where, "identifier", "missing: no id or identifier to refer to the consent by")
    provision = consent.provision
    permitted: list[str] = []
    denied: set[str] = set()
    purposes: list[str] = []
    information: list[str] = []
    part2 = any(c.code in PART2_CODES for c in (consent.policyRule.coding if consent.policyRule else []) or [])

    def visit(node, inherited: str) -> None:
        nonlocal part2
        kind = node.type or inherited
        for actor in node.actor or []:
            name = _actor_name(actor)
            if name and _is_recipient(actor):
                (permitted.append(name) if kind == "permit" else denied.add(name))
        if kind == "permit":
            purposes.extend(p.code for p in node.purpose or [] if p.code)
            information.extend(c.code for c in getattr(node, "class_fhir", None) or [] if c.code)
            labels = [s.code for s in node.securityLabel or [] if s.code]
            information.extend(labels)
            part2 = part2 or any(code in PART2_CODES for code in labels)
        for child in node.provision or []:
            visit(child, kind)

    period_end = None
    if provision is not None:
        visit(provision, provision.type or "deny")
        period_end = provision.period.end if provision.period else None
    signed = consent.dateTime
    updated = (consent.meta.lastUpdated if consent.meta and consent.meta.lastUpdated else None) or signed
    return ConsentRecord(
        ref=SourceRef("fhir-consent", where, consent_id),
        consent_id=consent_id,
        patient_id=consent.patient.reference,
        discloser=", ".join(o.reference or o.display or "" for o in consent.organization or []),
        recipients=tuple(r for r in dict.fromkeys(permitted) if r not in denied),
        purpose=purposes[0] if purposes else "",
        information=tuple(dict.fromkeys(information)),
        status=consent.status,
        signed_on=_as_date(signed),
        expires_on=_as_date(period_end),
        updated_at=_as_datetime(updated),
        part2=part2,
    )


def _actor_name(actor) -> str:
    reference = actor.reference
    if reference is None:
        return ""
    if reference.identifier is not None and reference.identifier.system == CLASS_SYSTEM:
        return f"class:{reference.identifier.value}"
    if reference.reference:
        return reference.reference.rsplit("/", 1)[-1]
    return reference.display or ""


def _is_recipient(actor) -> bool:
    codes = {c.code for c in (actor.role.coding if actor.role else []) or []}
    return not codes or "IRCP" in codes


def _as_date(value) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _as_datetime(value) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    day = _as_date(value) or date(1970, 1, 1)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def read_csv(path: Path) -> Loaded:
    """Read a consent CSV (columns :data:`CSV_COLUMNS`; lists separated by ``;``; dates ISO 8601)."""
    good: list[ConsentRecord] = []
    bad: list[RecordError] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            return Loaded((), (RecordError(path.name, missing[0], "column missing"),))
        for number, row in enumerate(reader, start=2):
            where = f"{path.name}#row={number}"
            try:
                good.append(_from_row(row, where))
            except RecordError as error:
                bad.append(error)
    return Loaded(tuple(good), tuple(bad))


def _from_row(row: dict[str, str], where: str) -> ConsentRecord:
    for required in ("consent_id", "patient_id", "status"):
        if not (row.get(required) or "").strip():
            raise RecordError(where, required, "empty")
    dates = {}
    for name in ("signed_on", "expires_on", "revoked_on"):
        text = (row.get(name) or "").strip()
        try:
            dates[name] = date.fromisoformat(text) if text else None
        except ValueError:
            raise RecordError(where, name, "not an ISO date (YYYY-MM-DD)") from None
    status = row["status"].strip()
    if status not in ("active", "inactive", "rejected", "draft", "proposed", "entered-in-error"):
        raise RecordError(where, "status", "not a FHIR Consent status")
    split = lambda text: tuple(p.strip() for p in (text or "").split(";") if p.strip())  # noqa: E731
    return ConsentRecord(
        ref=SourceRef("consent-csv", where, row["consent_id"].strip()),
        consent_id=row["consent_id"].strip(),
        patient_id=row["patient_id"].strip(),
        discloser=(row.get("discloser") or "").strip(),
        recipients=split(row.get("recipients")),
        purpose=(row.get("purpose") or "").strip(),
        information=split(row.get("information")),
        status=status,  # type: ignore[arg-type]
        signed_on=dates["signed_on"],
        expires_on=dates["expires_on"],
        revoked_on=dates["revoked_on"],
        part2=(row.get("part2") or "").strip().lower() in ("1", "true", "yes", "y"),
        expiry_event=(row.get("expiry_event") or "").strip(),
        updated_at=_as_datetime(dates["signed_on"]),
    )


@dataclass(frozen=True, slots=True)
class OnFile:
    """One consent as a privacy officer sees it: the consent and the shared person id (never the patient ref)."""

    consent: ConsentRecord
    shared_id: str | None  # None until the person index has linked the patient


def normalize_patient(reference: str) -> str:
    """The patient's id as records and consents both name it: ``Patient/52``, ``.../Patient/52/_history/3``
    and ``52`` are all ``52`` (a FHIR source gives records the bare id and consents the reference)."""
    text = reference.strip()
    if "Patient/" in text:
        text = text.rsplit("Patient/", 1)[1].split("/", 1)[0]
    return text


class LegacyConsentTable(RuntimeError):
    """The consents table still holds patient references in clear and could not be migrated."""


class ConsentRegistry:
    """The ``consents`` table: replace per source file, look up per patient, revoke.

    The patient is kept only as a keyed hash (HMAC-SHA256 under the exchange's index secret, the same secret
    the person index hashes its match keys with, with a label of its own so the two never collide): the state
    database can match a record to its consents but holds no patient reference a reader could use.
    """

    def __init__(self, engine: Engine, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the consent registry's secret must be at least 32 bytes (the index secret)")
        self._engine = engine
        self._secret = secret

    def patient_key(self, patient_id: str) -> str:
        """The keyed hash a patient reference is stored and looked up under."""
        message = b"consent-patient\x00" + normalize_patient(patient_id).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def replace(self, source: str, records: Iterable[ConsentRecord], shared_ids: dict[str, str] | None = None) -> int:
        """Make ``records`` the whole contribution of ``source``; returns how many are on file from it.

        ``shared_ids``: patient reference -> shared person id, for patients the index already knows.
        """
        linked = {normalize_patient(k): v for k, v in (shared_ids or {}).items()}
        rows = [_row(source, r, self.patient_key(r.patient_id), linked.get(normalize_patient(r.patient_id)))
                for r in records]

        def write() -> None:
            with self._engine.begin() as conn:
                keys = sorted({r["patient_key"] for r in rows if not r["shared_id"]})
                for start in range(0, len(keys), 500):  # a reload keeps the shared ids already learned
                    known = dict(conn.execute(select(consents_table.c.patient_key, consents_table.c.shared_id).where(
                        consents_table.c.patient_key.in_(keys[start:start + 500]),
                        consents_table.c.shared_id.is_not(None))).all())
                    for row in rows:
                        row["shared_id"] = row["shared_id"] or known.get(row["patient_key"])
                conn.execute(delete(consents_table).where(consents_table.c.source == source))
                ids = [r["consent_id"] for r in rows]
                if ids:  # a consent moved to another file is taken over by this one
                    conn.execute(delete(consents_table).where(consents_table.c.consent_id.in_(ids)))
                    conn.execute(insert(consents_table), rows)

        self._with_schema(write)
        return len(rows)

    def load(self, path: Path, *, system: str | None = None) -> Loaded:
        """Read a CSV, one FHIR JSON file, or a directory of them, and replace what that source gave.

        ``system``: the source system whose records carry these patients' ids (an EHR exchange's
        ``source.system``); patients the person index already linked for it get their shared person id now.
        """
        if path.is_dir():
            loaded = read_fhir(sorted(path.glob("*.json")))
            loaded = Loaded(loaded.consents + read_csv_all(path).consents, loaded.rejected)
        elif path.suffix.lower() == ".csv":
            loaded = read_csv(path)
        else:
            loaded = read_fhir([path])
        shared = self._shared_ids(system, [c.patient_id for c in loaded.consents]) if system else {}
        self.replace(str(path.resolve()), loaded.consents, shared)
        return loaded

    def _shared_ids(self, system: str, patient_ids: list[str]) -> dict[str, str]:
        """patient id -> shared id, from the person index's crosswalk for ``system`` (bare id or reference)."""
        wanted = {normalize_patient(p) for p in patient_ids}
        names = wanted | {f"Patient/{p}" for p in wanted}
        found: dict[str, str] = {}
        with self._engine.connect() as conn:
            chunk = sorted(names)
            for start in range(0, len(chunk), 500):
                for record_id, shared_id in conn.execute(
                        select(crosswalk.c.record_id, crosswalk.c.shared_id).where(
                            crosswalk.c.system == system, crosswalk.c.record_id.in_(chunk[start:start + 500]))):
                    found[normalize_patient(record_id)] = shared_id
        return found

    def revoke(self, consent_id: str, on: date) -> bool:
        """Record a written revocation; True when the consent was on file."""
        def write() -> int:
            with self._engine.begin() as conn:
                return conn.execute(update(consents_table).where(consents_table.c.consent_id == consent_id)
                                    .values(revoked_on=on.isoformat())).rowcount

        return self._with_schema(write) > 0

    def for_patient(self, patient_id: str, *, shared_id: str | None = None) -> list[ConsentRecord]:
        """Every consent on file for one patient (valid or not: the decision is made per disclosure).

        ``shared_id``: the patient's shared person id, when the caller knows it (the pipeline does, once it
        linked the record); consents not yet showing it are updated so ``consents list`` can show it.
        """
        key = self.patient_key(patient_id)

        def read() -> list:
            with self._engine.connect() as conn:
                return conn.execute(select(consents_table).where(consents_table.c.patient_key == key)
                                    .order_by(consents_table.c.consent_id)).all()

        rows = self._with_schema(read)
        if shared_id and any(r.shared_id != shared_id for r in rows):
            with self._engine.begin() as conn:
                conn.execute(update(consents_table).where(consents_table.c.patient_key == key)
                             .values(shared_id=shared_id))
        return [_record(r, patient_id) for r in rows]

    def on_file(self, *, patient_id: str | None = None, shared_id: str | None = None) -> list[OnFile]:
        """Consents for a privacy officer's list: all, one patient's (looked up by hash) or one person's."""
        query = select(consents_table).order_by(consents_table.c.consent_id)
        if patient_id:
            query = query.where(consents_table.c.patient_key == self.patient_key(patient_id))
        if shared_id:
            query = query.where(consents_table.c.shared_id == shared_id)

        def read() -> list:
            with self._engine.connect() as conn:
                return conn.execute(query).all()

        return [OnFile(_record(r, ""), r.shared_id) for r in self._with_schema(read)]

    def _with_schema(self, operation):
        """Run ``operation``; if the table is still the old one (patient references in clear), migrate it first.

        Checked on failure rather than before every call: the pipeline reads the registry per record.
        """
        try:
            return operation()
        except (OperationalError, ProgrammingError):
            if not self.migrate():
                raise
        return operation()

    def migrate(self) -> bool:
        """Replace clear patient references of an older ``consents`` table by their keyed hashes.

        True when there was something to migrate. Every consent is kept (revocations recorded with ``consents
        revoke`` live only here); SQLite's file is then vacuumed so the old pages holding the references are
        gone from the file too, not only from the table.
        """
        columns = {c["name"] for c in inspect(self._engine).get_columns(consents_table.name)}
        if "patient_id" not in columns:
            return False
        with self._engine.begin() as conn:
            old_table = Table(consents_table.name, MetaData(), autoload_with=conn)  # typed: dates come back as such
            legacy = [dict(r._mapping) for r in conn.execute(select(old_table))]
            conn.execute(text(f"DROP TABLE {consents_table.name}"))  # its indexes go with it
            consents_table.create(conn)
            rows = []
            for old in legacy:
                row = {c.name: old.get(c.name) for c in consents_table.columns}
                row["patient_key"] = self.patient_key(str(old["patient_id"]))
                rows.append(row)
            if rows:
                conn.execute(insert(consents_table), rows)
        if self._engine.dialect.name == "sqlite":
            with self._engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("VACUUM")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        columns = {c["name"] for c in inspect(self._engine).get_columns(consents_table.name)}
        if "patient_id" in columns:
            raise LegacyConsentTable("consents: the table still holds patient references in clear; fix: reload "
                                     "the consent files into a new state database")
        return True


def read_csv_all(directory: Path) -> Loaded:
    """Every consent CSV in a directory."""
    good: list[ConsentRecord] = []
    bad: list[RecordError] = []
    for path in sorted(directory.glob("*.csv")):
        loaded = read_csv(path)
        good.extend(loaded.consents)
        bad.extend(loaded.rejected)
    return Loaded(tuple(good), tuple(bad))


def _row(source: str, r: ConsentRecord, patient_key: str, shared_id: str | None) -> dict:
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return {
        "consent_id": r.consent_id, "source": source, "patient_key": patient_key, "shared_id": shared_id,
        "discloser": r.discloser,
        "recipients": json.dumps(list(r.recipients)), "purpose": r.purpose,
        "information": json.dumps(list(r.information)), "status": r.status, "signed_on": iso(r.signed_on),
        "expires_on": iso(r.expires_on), "revoked_on": iso(r.revoked_on), "part2": int(r.part2),
        "expiry_event": r.expiry_event, "updated_at": r.updated_at,
    }


def _record(row, patient_id: str) -> ConsentRecord:
    """The stored consent; ``patient_id`` is the caller's own (the table keeps only its hash)."""
    day = lambda text: date.fromisoformat(text) if text else None  # noqa: E731
    return ConsentRecord(
        ref=SourceRef("consents", row.source, row.consent_id), consent_id=row.consent_id,
        patient_id=patient_id, discloser=row.discloser, recipients=tuple(json.loads(row.recipients)),
        purpose=row.purpose, information=tuple(json.loads(row.information)), status=row.status,
        signed_on=day(row.signed_on), expires_on=day(row.expires_on), updated_at=row.updated_at,
        revoked_on=day(row.revoked_on), part2=bool(row.part2), expiry_event=row.expiry_event,
    )
