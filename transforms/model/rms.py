"""RMS rows -> :class:`CrisisContact` and :class:`Arrest`: validation and normalisation, no I/O.

A row arrives keyed by our canonical column names (the adapter maps the county's names to ours) with the values
the database driver returned (``datetime``, ``int``, ``str``, ``None``). Each function returns a typed record or
raises :class:`RecordError` naming the record and the field, never the value.

Code columns (who initiated the contact, the disposition) go through a code table: the defaults below cover our
own vocabulary and common RMS spellings; a county adds its own codes through the source config
(``codes: {disposition: {"TRANS-ER": "EMERGENCY_ROOM"}}``). An unknown code is a quarantined row, not a guess.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, tzinfo
from typing import Any

from transforms.model import values as v
from transforms.model.errors import RecordError
from transforms.model.records import Arrest, Charge, CrisisContact, PersonIdentity, SourceRef

PERSON_COLUMNS: tuple[str, ...] = (
    "person_id", "first_name", "middle_name", "last_name", "suffix", "dob", "sex", "race", "state_id",
    "fbi_number", "ssn",
)
CRISIS_COLUMNS: tuple[str, ...] = (
    "incident_number", *PERSON_COLUMNS, "contact_at", "agency", "initiated_by", "reason", "disposition",
    "co_responder", "referral_to", "updated_at",
)
"""Canonical columns of a crisis-contact (mental-health call or incident) view."""
REQUIRED_CRISIS_COLUMNS: tuple[str, ...] = (
    "incident_number", "first_name", "last_name", "contact_at", "initiated_by", "disposition", "updated_at",
)
ARREST_COLUMNS: tuple[str, ...] = (
    "arrest_number", "incident_number", *PERSON_COLUMNS, "arrested_at", "agency", "statute", "charge_description",
    "severity", "location", "updated_at",
)
"""Canonical columns of an arrests view (one charge per row; blank statute: no charge listed)."""
REQUIRED_ARREST_COLUMNS: tuple[str, ...] = ("arrest_number", "first_name", "last_name", "arrested_at", "updated_at")

INITIATORS: dict[str, str] = {
    "911_CALL": "911_CALL", "911": "911_CALL", "CALL": "911_CALL", "CFS": "911_CALL", "DISPATCH": "911_CALL",
    "OFFICER_INITIATED": "OFFICER_INITIATED", "OFFICER": "OFFICER_INITIATED", "OI": "OFFICER_INITIATED",
    "SELF_INITIATED": "OFFICER_INITIATED", "ON_VIEW": "OFFICER_INITIATED",
    "THIRD_PARTY": "THIRD_PARTY", "FAMILY": "THIRD_PARTY", "PROVIDER": "THIRD_PARTY",
    "SELF": "SELF", "WALK_IN": "SELF", "OTHER": "OTHER",
}
"""Default code table for ``initiated_by`` (upper-case keys)."""

DISPOSITIONS: dict[str, str] = {
    "EMERGENCY_ROOM": "EMERGENCY_ROOM", "ER": "EMERGENCY_ROOM", "HOSPITAL": "EMERGENCY_ROOM",
    "TRANSPORTED_ER": "EMERGENCY_ROOM", "CRISIS_CENTER": "CRISIS_CENTER", "CRISIS": "CRISIS_CENTER",
    "ARREST": "ARREST", "ARRESTED": "ARREST", "REFERRAL": "REFERRAL", "REFERRED": "REFERRAL",
    "LEFT_ON_SCENE_WITH_REFERRAL": "LEFT_ON_SCENE_WITH_REFERRAL", "LEFT_ON_SCENE": "LEFT_ON_SCENE",
    "NO_ACTION": "LEFT_ON_SCENE", "GOA": "LEFT_ON_SCENE", "OTHER": "OTHER",
}
"""Default code table for ``disposition`` (upper-case keys)."""

_SEVERITY = {"F": "F", "FELONY": "F", "M": "M", "MISDEMEANOR": "M"}


def crisis_contact_from_row(row: Mapping[str, object], ref: SourceRef, *, today: date,
                            codes: Mapping[str, Mapping[str, str]] | None = None,
                            default_tz: tzinfo | None = None) -> CrisisContact:
    """One crisis-contact row -> CrisisContact; ``codes`` adds county codes per column to the defaults."""
    when = lambda x: v.a_datetime(x, default_tz=default_tz)  # noqa: E731
    f = _parse(row, ref, today, {
        "incident_number": lambda x: v.text(x, required=True).upper(),
        "contact_at": when, "agency": v.text,
        "initiated_by": lambda x: v.code(x, _table(INITIATORS, codes, "initiated_by")),
        "reason": v.text,
        "disposition": lambda x: v.code(x, _table(DISPOSITIONS, codes, "disposition")),
        "co_responder": v.flag, "referral_to": v.text, "updated_at": when,
    })
    return CrisisContact(ref=ref, incident_number=f["incident_number"], person=f["person"],
                         contact_at=f["contact_at"], agency=f["agency"], initiated_by=f["initiated_by"],
                         reason=f["reason"], disposition=f["disposition"], updated_at=f["updated_at"],
                         co_responder=f["co_responder"], referral_to=f["referral_to"])


def arrest_from_row(row: Mapping[str, object], ref: SourceRef, *, today: date,
                    default_tz: tzinfo | None = None, require_names: bool = True) -> Arrest:
    """One arrests row -> Arrest (with its one charge when ``statute`` is filled).

    ``require_names`` False accepts rows without a name (de-identified open-data extracts such as Baltimore's
    "BPD Arrests"): such arrests can be counted and mapped, not linked to a person.
    """
    when = lambda x: v.a_datetime(x, default_tz=default_tz)  # noqa: E731
    f = _parse(row, ref, today, {
        "arrest_number": lambda x: v.text(x, required=True).upper(),
        "incident_number": lambda x: v.text(x).upper(),
        "arrested_at": when, "agency": v.text, "statute": lambda x: v.text(x).upper(),
        "location": v.text, "updated_at": when,
    }, require_names=require_names)
    charges: tuple[Charge, ...] = ()
    if f["statute"]:  # a blank statute means the row lists no charge: its description and severity are ignored
        c = _parse(row, ref, today, {"charge_description": v.text,
                                     "severity": lambda x: v.code(x, _SEVERITY, required=False)}, person=False)
        charges = (Charge(1, f["statute"], c["charge_description"], c["severity"] == "F"),)
    return Arrest(ref=ref, arrest_number=f["arrest_number"], person=f["person"], arrested_at=f["arrested_at"],
                  agency=f["agency"], charges=charges, updated_at=f["updated_at"],
                  incident_number=f["incident_number"], location_text=f["location"])


def _parse(row: Mapping[str, object], ref: SourceRef, today: date, parsers: Mapping[str, Callable[[object], Any]],
           *, require_names: bool = True, person: bool = True) -> dict[str, Any]:
    """Parse the person columns (unless ``person`` is False), then each of ``parsers``' columns in order.

    The first problem raises a RecordError naming the record and its column, never the value.
    """
    out: dict[str, Any] = {}
    try:
        if person:
            out["person"] = _person(row, today, require_names=require_names)
    except _PersonProblem as problem:
        raise RecordError(str(ref), problem.field, problem.reason) from None
    for column, parse in parsers.items():
        try:
            out[column] = parse(row.get(column))
        except v.FieldProblem as problem:
            raise RecordError(str(ref), column, problem.args[0]) from None
    return out


class _PersonProblem(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field, self.reason = field, reason


def _person(row: Mapping[str, object], today: date, *, require_names: bool = True) -> PersonIdentity:
    """The person columns of an RMS row (birth date optional: many RMS records lack it)."""
    parsers = {
        "first_name": lambda x: v.name(x, required=require_names),
        "last_name": lambda x: v.name(x, required=require_names),
        "middle_name": v.name, "suffix": v.name, "dob": lambda x: v.birth_date(x, today=today),
        "sex": v.sex, "race": v.race, "person_id": lambda x: v.text(x).upper(),
        "state_id": lambda x: v.text(x).upper(), "fbi_number": lambda x: v.text(x).upper(), "ssn": _ssn,
    }
    out: dict[str, object] = {}
    for column, parse in parsers.items():
        try:
            out[column] = parse(row.get(column))
        except v.FieldProblem as problem:
            raise _PersonProblem(column, problem.args[0]) from None
    return PersonIdentity(given_name=out["first_name"], surname=out["last_name"],  # type: ignore[arg-type]
                          birth_date=out["dob"], middle_name=out["middle_name"],  # type: ignore[arg-type]
                          name_suffix=out["suffix"], sex=out["sex"], race=out["race"],  # type: ignore[arg-type]
                          state_id=out["state_id"], fbi_number=out["fbi_number"],  # type: ignore[arg-type]
                          ssn=out["ssn"], local_person_id=out["person_id"])  # type: ignore[arg-type]


def _ssn(value: object) -> str:
    digits = v.text(value).replace("-", "").replace(" ", "")
    if not digits:
        return ""
    if len(digits) != 9 or not digits.isdigit():
        raise v.FieldProblem("is not a 9-digit number")
    return digits


def _table(defaults: Mapping[str, str], codes: Mapping[str, Mapping[str, str]] | None, column: str) -> dict[str, str]:
    table = dict(defaults)
    for key, value in ((codes or {}).get(column) or {}).items():
        table[key.strip().upper()] = value
    return table
