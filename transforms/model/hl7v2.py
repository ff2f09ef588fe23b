"""HL7 v2 ADT messages (already split into segments and fields) -> :class:`ClinicalRecord`; no I/O.

The adapter parses each message with hl7apy and hands over its segments as lists of ER7 field strings, indexed
the HL7 way (``fields[3]`` is PID-3; for MSH, ``fields[1]`` is the field separator so ``fields[9]`` is MSH-9).
This module reads the components it needs and raises :class:`RecordError` naming the segment field
(``PID-7``, ``DG1[2]-3``), never its value.

Events read: A01 admit, A03 discharge, A04 register, A08 update (and A28 / A31, the person-only add and update,
which carry the same PID); A40 merge, whose record is the surviving patient with ``replaces_patient_ids`` from
``MRG-1`` so identity resolution can merge the two. Other events are refused with a reason naming the event.

Mapping: patient id = the first ``PID-3`` repetition of type MR (else the first); SSN from a ``PID-3``
repetition of type SS or from ``PID-19``; name from the first ``PID-5`` repetition; ``PID-7`` birth date;
``PID-8`` sex; ``PID-10`` race (CDC codes or NCIC letters); ``PID-11`` street and postal code; ``PID-13``
phone; ``DG1-3`` diagnoses kept when behavioral health (ICD-10 chapter F, or the SNOMED CT set of
:mod:`transforms.model.fhir`); ``PV1-44`` admit time = last encounter; updated at ``EVN-2`` (else ``MSH-7``).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

from transforms.model import values as v
from transforms.model.errors import RecordError
from transforms.model.fhir import BEHAVIORAL_SNOMED, SNOMED
from transforms.model.records import ClinicalRecord, Coding, Condition, PersonIdentity, SourceRef

READ_EVENTS = frozenset({"A01", "A03", "A04", "A08", "A28", "A31", "A40"})
"""ADT trigger events this mapping turns into records."""

_ICD10 = {"I10", "I10C", "I10-CM", "ICD10", "ICD10CM", "ICD-10", "ICD-10-CM"}
_SCT = {"SCT", "SNM", "SNM3", "SNOMED", "SNOMED-CT", "SCTID"}
_SEX = {"F": "F", "M": "M", "U": "U", "O": "X", "A": "X", "X": "X", "N": "U"}
_CDC_RACE = {"2106-3": "W", "2054-5": "B", "2028-9": "A", "2076-8": "A", "1002-5": "I", "2131-1": "U"}
_DTM = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?")


@dataclass(frozen=True, slots=True)
class Encoding:
    """The message's separators (MSH-1, MSH-2): field, component, repetition, escape, subcomponent."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


def unescape(text: str, enc: Encoding) -> str:
    """Replace the HL7 escape sequences for the separators (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\); drop the others."""
    if enc.escape not in text:
        return text
    table = {"F": enc.field, "S": enc.component, "T": enc.subcomponent, "R": enc.repetition, "E": enc.escape}
    parts = text.split(enc.escape)
    out = [parts[0]]
    for i in range(1, len(parts), 2):
        code = parts[i]
        out.append(table.get(code, ""))  # \H\, \N\, \.br\, \Xhh\: formatting, not data
        if i + 1 < len(parts):
            out.append(parts[i + 1])
    return "".join(out)


class _Message:
    """Segments of one message with component access (``get("PID", 5, rep=0, comp=1, sub=1)``)."""

    def __init__(self, segments: Sequence[Sequence[str]], enc: Encoding) -> None:
        self.segments = segments
        self.enc = enc

    def all(self, name: str) -> list[Sequence[str]]:
        """Every segment named ``name``, in message order."""
        return [s for s in self.segments if s and s[0] == name]

    def first(self, name: str) -> Sequence[str] | None:
        """The first segment named ``name``, or None."""
        found = self.all(name)
        return found[0] if found else None

    def reps(self, segment: Sequence[str] | None, n: int) -> list[str]:
        """The repetitions of field ``n`` of ``segment`` (empty when absent)."""
        if segment is None or n >= len(segment) or not segment[n]:
            return []
        return segment[n].split(self.enc.repetition)

    def comp(self, value: str, c: int, sub: int = 0) -> str:
        """Component ``c`` (0-based), subcomponent ``sub``, of one field repetition, unescaped."""
        comps = value.split(self.enc.component)
        if c >= len(comps):
            return ""
        subs = comps[c].split(self.enc.subcomponent)
        return unescape(subs[sub], self.enc) if sub < len(subs) else ""


def event_of(segments: Sequence[Sequence[str]], enc: Encoding) -> str:
    """The trigger event (MSH-9.2, else EVN-1) of a message, upper-cased; "" when absent."""
    msg = _Message(segments, enc)
    msh = msg.first("MSH")
    reps = msg.reps(msh, 9)
    event = msg.comp(reps[0], 1) if reps else ""
    if not event:
        evn = msg.reps(msg.first("EVN"), 1)
        event = msg.comp(evn[0], 0) if evn else ""
    return event.strip().upper()


def record_from_adt(segments: Sequence[Sequence[str]], enc: Encoding, ref: SourceRef, *, today: date,
                    default_tz: tzinfo | None = None) -> ClinicalRecord:
    """One ADT message's segments -> ClinicalRecord (see the module docstring)."""
    msg = _Message(segments, enc)
    field = "MSH-9"
    try:
        event = event_of(segments, enc)
        if event not in READ_EVENTS:
            raise v.FieldProblem("is a trigger event this source does not read (reads: "
                                 + ", ".join(sorted(READ_EVENTS)) + ")")
        pid = msg.first("PID")
        field = "PID"
        if pid is None:
            raise v.FieldProblem("segment is missing")
        field = "PID-3"
        ids = msg.reps(pid, 3)
        patient_id = mrn = ssn = ""
        for rep in ids:
            ident, kind = v.text(msg.comp(rep, 0), limit=64), msg.comp(rep, 4).upper()
            if kind == "SS" and ident:
                ssn = ssn or _ssn(ident)
            elif ident and (kind == "MR" and not mrn):
                mrn = ident
            patient_id = patient_id or (ident if kind != "SS" else "")
        patient_id = mrn or patient_id
        if not patient_id:
            raise v.FieldProblem("holds no patient identifier")
        field = "PID-19"
        if not ssn and len(pid) > 19 and pid[19]:
            ssn = _ssn(v.text(msg.comp(pid[19], 0), limit=16))
        field = "PID-5"
        names = msg.reps(pid, 5)
        if not names:
            raise v.FieldProblem("is required")
        surname = v.name(msg.comp(names[0], 0), required=True)
        given = v.name(msg.comp(names[0], 1), required=True)
        middle = v.name(msg.comp(names[0], 2))
        suffix = v.name(msg.comp(names[0], 3))
        field = "PID-7"
        born = _dtm(msg.comp(pid[7], 0) if len(pid) > 7 else "", default_tz or timezone.utc)
        birth = v.birth_date(born.date() if born else None, today=today)
        field = "PID-8"
        sex_code = v.text(pid[8] if len(pid) > 8 else "").upper()
        if sex_code and sex_code not in _SEX:
            raise v.FieldProblem("is not a known administrative sex code (HL7 table 0001)")
        field = "PID-10"
        races = msg.reps(pid, 10)
        race_code = v.text(msg.comp(races[0], 0)).upper() if races else ""
        race = _CDC_RACE.get(race_code, v.race(race_code)) if race_code else ""
        field = "PID-11"
        addresses = msg.reps(pid, 11)
        street = v.text(msg.comp(addresses[0], 0)) if addresses else ""
        postal = v.text(msg.comp(addresses[0], 4), limit=16) if addresses else ""
        field = "PID-13"
        phones = msg.reps(pid, 13)
        phone = ""
        if phones:
            phone = v.text(msg.comp(phones[0], 0), limit=40) or v.text(
                msg.comp(phones[0], 5) + msg.comp(phones[0], 6), limit=40)
        conditions = []
        for i, dg1 in enumerate(msg.all("DG1")):
            field = f"DG1[{i}]-3"
            condition = _diagnosis(msg, dg1, default_tz)
            if condition is not None:
                conditions.append(condition)
        field = "PV1-44"
        pv1 = msg.first("PV1")
        admitted = _dtm(msg.comp(pv1[44], 0), default_tz) if pv1 is not None and len(pv1) > 44 else None
        field = "MRG-1"
        merged: tuple[str, ...] = ()
        if event == "A40":
            merged = tuple(v.text(msg.comp(rep, 0), limit=64) for mrg in msg.all("MRG") for rep in msg.reps(mrg, 1)
                           if msg.comp(rep, 0))
            if not merged:
                raise v.FieldProblem("is required in an A40 merge (the prior patient id)")
        field = "EVN-2"
        evn = msg.first("EVN")
        updated = _dtm(msg.comp(evn[2], 0), default_tz) if evn is not None and len(evn) > 2 else None
        if updated is None:
            field = "MSH-7"
            msh = msg.first("MSH")
            updated = _dtm(msg.comp(msh[7], 0), default_tz) if msh is not None and len(msh) > 7 else None
            if updated is None:
                raise v.FieldProblem("is required (the message date/time)")
    except v.FieldProblem as problem:
        raise RecordError(str(ref), field, problem.args[0]) from None
    person = PersonIdentity(given_name=given, surname=surname, birth_date=birth, middle_name=middle,
                            name_suffix=suffix, sex=_SEX.get(sex_code, "U"), race=race,  # type: ignore[arg-type]
                            ssn=ssn, local_person_id=patient_id.upper(), street_address=street,
                            postal_code=postal, phone=phone)
    return ClinicalRecord(ref=ref, patient_id=patient_id, person=person, updated_at=updated,
                          conditions=tuple(conditions), last_encounter_at=admitted, replaces_patient_ids=merged)


def _diagnosis(msg: _Message, dg1: Sequence[str], default_tz: tzinfo | None) -> Condition | None:
    value = dg1[3] if len(dg1) > 3 else ""
    code = v.text(msg.comp(value, 0), limit=64).upper()
    system = v.text(msg.comp(value, 2), limit=64).upper()
    if system in _ICD10 and code.startswith("F"):
        uri = "http://hl7.org/fhir/sid/icd-10-cm"
    elif system in _SCT and code in BEHAVIORAL_SNOMED:
        uri = SNOMED
    else:
        return None
    recorded = _dtm(msg.comp(dg1[5], 0), default_tz) if len(dg1) > 5 else None
    return Condition(coding=Coding(uri, code, v.text(msg.comp(value, 1))),
                     recorded_on=recorded.date() if recorded else None)


def _dtm(value: str, default_tz: tzinfo | None) -> datetime | None:
    """An HL7 DTM (``YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]``); naive ones take ``default_tz`` or are refused."""
    value = v.text(value, limit=32)
    if not value:
        return None
    match = _DTM.fullmatch(value)
    if not match:
        raise v.FieldProblem("is not a valid HL7 date/time (YYYYMMDDHHMMSS[+ZZZZ])")
    parts = [int(p) if p else d for p, d in zip(match.groups()[:6], (0, 1, 1, 0, 0, 0))]
    fraction = int((match[7] or "0").ljust(6, "0")[:6])
    if match[8]:
        sign = -1 if match[8][0] == "-" else 1
        zone: tzinfo | None = timezone(sign * timedelta(hours=int(match[8][1:3]), minutes=int(match[8][3:5])))
    elif match[4] is None:
        zone = default_tz or timezone.utc  # a date alone: the zone does not change the day we keep
    else:
        zone = default_tz
    if zone is None:
        raise v.FieldProblem("has no UTC offset and no time zone is configured for this source")
    try:
        return datetime(*parts, fraction, tzinfo=zone)  # type: ignore[misc]
    except ValueError:
        raise v.FieldProblem("is not a valid HL7 date/time (no such day or time)") from None


def _ssn(value: str) -> str:
    digits = value.replace("-", "").replace(" ", "")
    if len(digits) != 9 or not digits.isdigit():
        raise v.FieldProblem("is not a 9-digit SSN")
    return digits
