"""The typed record model every source adapter yields and every transform consumes.

Records are frozen, slotted dataclasses of plain values: cheap to build by the hundred thousand, safe to pass
between floors, and hashable into a stable content digest (:func:`record_digest`) that makes message ids
idempotent. ``__repr__`` is suppressed on PHI-bearing fields so a stray log line or traceback shows the
record's reference, not the person.
"""
from __future__ import annotations

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
    birth_date: date = field(repr=False)
    middle_name: str = field(default="", repr=False)
    name_suffix: str = field(default="", repr=False)
    sex: Sex = "U"
    race: str = field(default="", repr=False)
    state_id: str = field(default="", repr=False)  # SID / state fingerprint number
    fbi_number: str = field(default="", repr=False)
    ssn: str = field(default="", repr=False)
    local_person_id: str = field(default="", repr=False)  # the source system's own person key


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


def record_digest(record: object) -> str:
    """A SHA-256 over a record's content (every field but its source reference): same content, same digest.

    A record that changes at the source (a corrected charge) gets a new digest, hence a new message; the
    same record read twice, from another file or row, does not.
    """
    payload = {f.name: getattr(record, f.name) for f in fields(record) if f.name != "ref"}
    blob = json.dumps(payload, sort_keys=True, default=_plain, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _plain(value: object) -> object:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(type(value).__name__)
