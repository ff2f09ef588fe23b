"""The typed record model every source adapter yields and every transform consumes.

Records are frozen, slotted dataclasses of plain values: cheap to build by the hundred thousand, safe to pass
between floors, and hashable into a stable content digest (:func:`record_digest`) that makes message ids
idempotent. ``__repr__`` is suppressed on PHI-bearing fields so a stray log line or traceback shows the
record's reference, not the person.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from typing import Literal

Sex = Literal["F", "M", "U", "X"]


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a record came from: system, locator within it (file + row, table + key) and record id."""

    system: str
    locator: str
    record_id: str = ""

    def __str__(self) -> str:
        return f"{self.system}:{self.locator}"


@dataclass(frozen=True, slots=True)
class PersonIdentity:
    """What a source knows about who a person is; the input of identity resolution."""

    given_name: str = field(repr=False)
    surname: str = field(repr=False)
    birth_date: date | None = field(repr=False)  # None where a source does not know it
    middle_name: str = field(default="", repr=False)
    name_suffix: str = field(default="", repr=False)
    sex: Sex = "U"
    race: str = field(default="", repr=False)
    state_id: str = field(default="", repr=False)  # SID / state fingerprint number
    fbi_number: str = field(default="", repr=False)
    ssn: str = field(default="", repr=False)
    local_person_id: str = field(default="", repr=False)  # the source system's own person key (MRN, RMS id)
    street_address: str = field(default="", repr=False)
    postal_code: str = field(default="", repr=False)
    phone: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Charge:
    """One charge on a booking."""

    sequence: int
    statute: str
    description: str
    felony: bool
    counts: int = 1


@dataclass(frozen=True, slots=True)
class JailBooking:
    """A jail booking as a jail management system exports it."""

    ref: SourceRef
    booking_number: str
    person: PersonIdentity
    booked_at: datetime
    facility: str
    booking_agency: str
    arresting_agency: str
    charges: tuple[Charge, ...]
    updated_at: datetime
    released_at: datetime | None = None
    record_type: Literal["JailBooking"] = "JailBooking"


ContactInitiator = Literal["911_CALL", "OFFICER_INITIATED", "THIRD_PARTY", "SELF", "OTHER"]
CrisisDisposition = Literal[
    "EMERGENCY_ROOM", "CRISIS_CENTER", "ARREST", "REFERRAL", "LEFT_ON_SCENE_WITH_REFERRAL",
    "LEFT_ON_SCENE", "OTHER",
]


@dataclass(frozen=True, slots=True)
class CrisisContact:
    """A police contact with a person in crisis, from an RMS (incident or call for service)."""

    ref: SourceRef
    incident_number: str
    person: PersonIdentity
    contact_at: datetime
    agency: str
    initiated_by: ContactInitiator
    reason: str  # nature of the call as the RMS codes or describes it (e.g. "welfare check")
    disposition: CrisisDisposition
    updated_at: datetime
    co_responder: bool = False  # a clinician attended with the officer
    referral_to: str = ""  # program or provider the person was referred to
    record_type: Literal["CrisisContact"] = "CrisisContact"


@dataclass(frozen=True, slots=True)
class Arrest:
    """An arrest as an RMS (or a NIBRS arrestee segment) records it."""

    ref: SourceRef
    arrest_number: str
    person: PersonIdentity
    arrested_at: datetime
    agency: str
    charges: tuple[Charge, ...]
    updated_at: datetime
    incident_number: str = ""
    location_text: str = field(default="", repr=False)
    record_type: Literal["Arrest"] = "Arrest"


@dataclass(frozen=True, slots=True)
class Coding:
    """A code from a code system (ICD-10-CM, SNOMED CT, LOINC, ...) with its display text."""

    system: str
    code: str
    display: str = ""


@dataclass(frozen=True, slots=True)
class Condition:
    """A diagnosis or problem on a clinical record; ``security_labels`` as FHIR meta.security codes."""

    coding: Coding = field(repr=False)
    recorded_on: date | None = None
    active: bool = True
    security_labels: frozenset[str] = frozenset()  # e.g. {"R", "42CFRPart2", "ETH", "PSY"}


@dataclass(frozen=True, slots=True)
class ContactPoint:
    """A person to call: a case manager or crisis-plan contact (name, organization, phone)."""

    name: str = field(repr=False)
    organization: str = ""
    phone: str = field(default="", repr=False)
    role: str = ""  # e.g. "case manager"


@dataclass(frozen=True, slots=True)
class ClinicalRecord:
    """What a behavioral-health EHR knows about one patient, assembled from FHIR or HL7 v2.

    Conditions keep their codes and security labels so redaction can decide what may leave; nothing here
    is ever sent as-is to law enforcement (see the BehavioralHealthAlert mapping and the redaction profiles).
    """

    ref: SourceRef
    patient_id: str  # the EHR's id for the patient (FHIR Patient.id or MRN)
    person: PersonIdentity
    updated_at: datetime
    conditions: tuple[Condition, ...] = ()
    crisis_plan: bool = False  # a crisis plan / safety plan is on file
    advance_directive: bool = False  # a psychiatric advance directive is on file
    case_manager: ContactPoint | None = None
    last_encounter_at: datetime | None = None
    security_labels: frozenset[str] = frozenset()  # record-level labels (meta.security)
    part2_program: bool = False  # the data comes from a 42 CFR Part 2 program
    replaces_patient_ids: tuple[str, ...] = ()  # ids merged into this patient (HL7 v2 A40 MRG-1): feeds identity
    record_type: Literal["ClinicalRecord"] = "ClinicalRecord"


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A patient's consent to disclose, with the 42 CFR 2.31 elements the redaction step checks."""

    ref: SourceRef
    consent_id: str
    patient_id: str
    discloser: str  # who may disclose (the program or provider)
    recipients: tuple[str, ...]  # recipient ids or recipient classes ("class:law-enforcement")
    purpose: str
    information: tuple[str, ...]  # categories of information the consent covers
    status: Literal["active", "inactive", "rejected", "draft", "proposed", "entered-in-error"]
    signed_on: date | None
    expires_on: date | None  # None: no expiry date (an expiry event may still be recorded in ``expiry_event``)
    updated_at: datetime
    revoked_on: date | None = None
    part2: bool = False  # the consent authorizes disclosure of Part 2 information
    expiry_event: str = ""
    record_type: Literal["ConsentRecord"] = "ConsentRecord"


def record_digest(record: object) -> str:
    """A SHA-256 over a record's content (every field but its source reference): same content, same digest.

    A record that changes at the source (a corrected charge) gets a new digest, hence a new message; the
    same record read twice, from another file or row, does not. The digest is part of every message id,
    so its input must never change: sorted-key compact JSON of the fields, dates in ISO 8601, nested
    records as objects of all their fields, sets as lists sorted by ``str``.
    """
    names = _digest_field_names(type(record))
    return hashlib.sha256(_JSON.encode(_plain_fields(record, names)).encode()).hexdigest()


# What ``json.dumps(payload, sort_keys=True, separators=(",", ":"))`` makes, without a new encoder per call.
# Keys need no sorting: every object _plain makes has its keys in sorted order already.
# No circular check: _plain copies every container, and a record that held itself would recurse there first.
_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)

@functools.cache  # per dataclass type: ``dataclasses.fields()`` rebuilds its answer on every call
def _field_names(cls: type) -> tuple[str, ...]:
    """The field names of dataclass ``cls`` in sorted order."""
    return tuple(sorted(f.name for f in fields(cls)))


@functools.cache
def _digest_field_names(cls: type) -> tuple[str, ...]:
    """What a record's digest covers: every field but ``ref``, sorted."""
    return tuple(name for name in _field_names(cls) if name != "ref")


def _plain_fields(obj: object, names: tuple[str, ...]) -> dict[str, object]:
    """The fields ``names`` of dataclass ``obj`` as a dict of JSON types, keys in sorted order."""
    out = {}
    for name in names:
        value = getattr(obj, name)
        kind = type(value)
        # Most fields are plain strings, numbers or None: no call for them.
        out[name] = value if kind is str or kind is int or kind is bool or value is None else _plain(value)
    return out


def _plain(value: object) -> object:
    """``value`` as JSON types, written as ``json.dumps`` would with the digest's original ``default=`` hook.

    JSON types (str, int, float, bool, None and their subclasses) are left for json to write; containers
    are walked (dict keys in sorted order, as ``sort_keys`` has them); dates, dataclasses and sets become
    what the hook made of them: ISO 8601 text, an object of every field, a list sorted by ``str``.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in sorted(value.items())}
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return _plain_fields(value, _field_names(type(value)))
    if isinstance(value, (set, frozenset)):
        return [_plain(item) for item in sorted(value, key=str)]
    raise TypeError(kind.__name__)
