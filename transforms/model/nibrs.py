"""NIBRS arrestee segments (legacy flat file) and NIBRS IEPD XML reports -> :class:`Arrest`; no I/O.

NIBRS holds **no names, birth dates or other direct identifiers**: an arrestee is an age, sex, race,
ethnicity and resident status inside an agency's incident. The Arrest records made here therefore carry an
empty name and no birth date; they can be counted and mapped (ProgramMetrics, familiar-faces counts by
agency), not linked to people. The UCR offense code goes into ``Charge.statute`` (with its name as the
description); NIBRS does not say felony or misdemeanour, so ``Charge.felony`` is False ("not known to be a
felony").

Flat file (FBI NIBRS Technical Specification, fixed width, 1-based columns):

* level 6, Group A arrestee: 17-25 ORI, 26-37 incident number, 38-39 arrestee sequence, 40-51 arrest
  transaction number, 52-59 arrest date (YYYYMMDD), 60 type of arrest, 62-64 UCR arrest offense code,
  71-74 age, 75 sex, 76 race, 77 ethnicity, 78 resident status;
* level 7, Group B arrest: 17-25 ORI, 26-37 arrest transaction number, 38-39 arrestee sequence, 40-47 arrest
  date, 48 type of arrest, 49-51 UCR arrest offense code, 58-61 age, 62 sex, 63 race, 64 ethnicity;
* every level: 1-4 segment length, 5 level, 6 action (I incident, A add, D delete, ...), 7-12 month and year of
  submission (MMYYYY). A delete is not an arrest to send: it is refused with that reason.

XML: ``nibrs:Submission/nibrs:Report`` elements (any NIEM version; matched by local name): the report's
action code and ORI, ``nc:Incident`` number, each ``j:Arrest`` joined through ``j:ArrestSubjectAssociation``
to its ``j:Arrestee`` and ``nc:Person`` (``s:id``/``s:ref``).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone

from lxml import etree

from transforms.model import values as v
from transforms.model.errors import RecordError
from transforms.model.records import Arrest, Charge, PersonIdentity, SourceRef

UCR_OFFENSES: dict[str, str] = {
    "09A": "Murder and nonnegligent manslaughter", "09B": "Negligent manslaughter", "09C": "Justifiable homicide",
    "100": "Kidnapping/abduction", "11A": "Rape", "11B": "Sodomy", "11C": "Sexual assault with an object",
    "11D": "Fondling", "120": "Robbery", "13A": "Aggravated assault", "13B": "Simple assault",
    "13C": "Intimidation", "200": "Arson", "210": "Extortion/blackmail", "220": "Burglary/breaking and entering",
    "23A": "Pocket-picking", "23B": "Purse-snatching", "23C": "Shoplifting", "23D": "Theft from building",
    "23E": "Theft from coin-operated machine", "23F": "Theft from motor vehicle",
    "23G": "Theft of motor vehicle parts", "23H": "All other larceny", "240": "Motor vehicle theft",
    "250": "Counterfeiting/forgery", "26A": "False pretenses/swindle/confidence game",
    "26B": "Credit card/automated teller machine fraud", "26C": "Impersonation", "26D": "Welfare fraud",
    "26E": "Wire fraud", "26F": "Identity theft", "26G": "Hacking/computer invasion", "26H": "Money laundering",
    "270": "Embezzlement", "280": "Stolen property offenses", "290": "Destruction/damage/vandalism of property",
    "35A": "Drug/narcotic violations", "35B": "Drug equipment violations", "36A": "Incest",
    "36B": "Statutory rape", "370": "Pornography/obscene material", "39A": "Betting/wagering",
    "39B": "Operating/promoting/assisting gambling", "39C": "Gambling equipment violations",
    "39D": "Sports tampering", "40A": "Prostitution", "40B": "Assisting or promoting prostitution",
    "40C": "Purchasing prostitution", "510": "Bribery", "520": "Weapon law violations",
    "64A": "Human trafficking, commercial sex acts", "64B": "Human trafficking, involuntary servitude",
    "720": "Animal cruelty", "90A": "Bad checks", "90B": "Curfew/loitering/vagrancy violations",
    "90C": "Disorderly conduct", "90D": "Driving under the influence", "90E": "Drunkenness",
    "90F": "Family offenses, nonviolent", "90G": "Liquor law violations", "90H": "Peeping Tom",
    "90I": "Runaway", "90J": "Trespass of real property", "90Z": "All other offenses",
}
"""NIBRS offense codes (Group A and B) and their names."""

ARREST_LEVELS = ("6", "7")
"""Flat-file segment levels that describe an arrest."""

_SEX = {"M": "M", "F": "F", "U": "U", "": "U"}
_RACE = {"W": "W", "B": "B", "A": "A", "P": "A", "I": "I", "U": "U", "": ""}
# (field, first column, last column) per level, 1-based inclusive as in the specification.
_FLAT = {
    "6": {"ori": (17, 25), "incident_number": (26, 37), "arrestee_sequence": (38, 39),
          "arrest_transaction_number": (40, 51), "arrest_date": (52, 59), "ucr_arrest_offense_code": (62, 64),
          "sex": (75, 75), "race": (76, 76)},
    "7": {"ori": (17, 25), "arrest_transaction_number": (26, 37), "arrestee_sequence": (38, 39),
          "arrest_date": (40, 47), "ucr_arrest_offense_code": (49, 51), "sex": (62, 62), "race": (63, 63)},
}
_MIN_LENGTH = {"6": 78, "7": 64}
_IDENTIFIER = re.compile(r"[A-Z0-9-]*")


def segment_level(line: str) -> str:
    """The segment level (column 5) of a flat-file line, or "" for a line too short to have one."""
    return line[4] if len(line) > 4 else ""


def arrest_from_flat_line(line: str, ref: SourceRef) -> Arrest:
    """One level-6 or level-7 flat-file segment -> Arrest; field paths are the specification's names."""
    level = segment_level(line)
    field = "segment_level"
    try:
        if level not in _FLAT:
            raise v.FieldProblem("is not an arrestee segment (level 6 or 7)")
        field = "segment"
        line = line.rstrip("\r\n")
        if len(line) < _MIN_LENGTH[level]:
            raise v.FieldProblem(f"is {len(line)} characters; a level {level} segment has at least "
                                 f"{_MIN_LENGTH[level]}")
        v.text(line, limit=10_000)  # control characters or undecodable bytes anywhere in the segment
        field = "segment_action_type"
        if line[5] == "D":
            raise v.FieldProblem("is D (delete): a deletion, not an arrest to send")
        values = {name: line[a - 1:b].strip() for name, (a, b) in _FLAT[level].items()}
        field = "submission_month_year"
        month_year = line[6:12]
        updated = _month(month_year[2:6], month_year[0:2])
        return _arrest(values, ref, updated, lambda name: name)
    except _Problem as problem:
        raise RecordError(str(ref), problem.field, problem.reason) from None
    except v.FieldProblem as problem:
        raise RecordError(str(ref), field, problem.args[0]) from None


def arrests_from_report(report: etree._Element, ref: SourceRef) -> Iterator[Arrest | RecordError]:
    """Every j:Arrest of one nibrs:Report element, or a RecordError naming the element path."""
    action = _text(report, "ReportHeader/ReportActionCategoryCode")
    ori = _text(report, "ReportHeader/ReportingAgency/OrganizationAugmentation/OrganizationORIIdentification/"
                        "IdentificationID")
    incident = _text(report, "Incident/ActivityIdentification/IdentificationID")
    report_date = _text(report, "ReportHeader/ReportDate/YearMonthDate")
    by_id = {_attr(e, "id"): e for e in report.iter() if isinstance(e.tag, str) and _attr(e, "id")}
    subject_of = {}
    for assoc in _children(report, "ArrestSubjectAssociation"):
        activity, subject = _first(assoc, "Activity"), _first(assoc, "Subject")
        if activity is not None and subject is not None:
            subject_of[_attr(activity, "ref")] = _attr(subject, "ref")
    for i, arrest in enumerate(_children(report, "Arrest")):
        where = SourceRef(ref.system, f"{ref.locator}/Arrest[{i}]", ref.record_id)
        if action == "D":
            yield RecordError(str(where), "ReportHeader/ReportActionCategoryCode",
                              "is D (delete): a deletion, not an arrest to send")
            continue
        arrestee = by_id.get(subject_of.get(_attr(arrest, "id"), ""))
        person_el = None
        if arrestee is not None:
            role = _first(arrestee, "RoleOfPerson")
            person_el = by_id.get(_attr(role, "ref")) if role is not None else None
        values = {
            "ori": ori, "incident_number": incident,
            "arrest_transaction_number": _text(arrest, "ActivityIdentification/IdentificationID"),
            "arrestee_sequence": _text(arrestee, "ArrestSequenceID") if arrestee is not None else "",
            "arrest_date": (_text(arrest, "ActivityDate/Date") or _text(arrest, "ActivityDate/DateTime")),
            "ucr_arrest_offense_code": _text(arrest, "ArrestCharge/ChargeUCRCode"),
            "sex": _text(person_el, "PersonSexCode") if person_el is not None else "",
            "race": _text(person_el, "PersonRaceNDExCode") if person_el is not None else "",
        }
        paths = {"arrest_transaction_number": "Arrest/ActivityIdentification/IdentificationID",
                 "arrest_date": "Arrest/ActivityDate/Date", "ucr_arrest_offense_code": "Arrest/ArrestCharge/ChargeUCRCode",
                 "sex": "Person/PersonSexCode", "race": "Person/PersonRaceNDExCode", "ori": "ReportHeader/ReportingAgency",
                 "incident_number": "Incident/ActivityIdentification"}
        try:
            updated = None
            if report_date:
                try:
                    updated = _month(report_date[:4], report_date[5:7])
                except v.FieldProblem as problem:
                    raise _Problem("ReportHeader/ReportDate/YearMonthDate", problem.args[0]) from None
            yield _arrest(values, where, updated, lambda name: paths.get(name, name), iso=True)
        except _Problem as problem:
            yield RecordError(str(where), problem.field, problem.reason)


class _Problem(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field, self.reason = field, reason


def _arrest(values: dict[str, str], ref: SourceRef, updated: datetime | None, path, *, iso: bool = False) -> Arrest:  # noqa: ANN001
    """The shared part of both layouts: check every value, build the Arrest."""
    checked: dict[str, str] = {}
    for name, value in values.items():
        try:
            checked[name] = v.text(value, limit=64).upper()
        except v.FieldProblem as problem:
            raise _Problem(path(name), problem.args[0]) from None
    for name in ("ori", "incident_number", "arrest_transaction_number", "arrestee_sequence"):
        if not _IDENTIFIER.fullmatch(checked.get(name, "")):
            raise _Problem(path(name), "contains characters NIBRS identifiers do not allow (letters, digits, -)")
    number = checked["arrest_transaction_number"]
    if not number:
        raise _Problem(path("arrest_transaction_number"), "is required")
    raw_date = checked["arrest_date"]
    try:
        if iso:
            arrested_day = v.a_date(raw_date, required=True)
        else:
            arrested_day = v.a_date(f"{raw_date[0:4]}-{raw_date[4:6]}-{raw_date[6:8]}" if len(raw_date) == 8
                                    and raw_date.isdigit() else "x", required=True)
    except v.FieldProblem:
        raise _Problem(path("arrest_date"), "is not a valid date") from None
    assert arrested_day is not None
    arrested_at = datetime(arrested_day.year, arrested_day.month, arrested_day.day, tzinfo=timezone.utc)
    code = checked["ucr_arrest_offense_code"]
    if code not in UCR_OFFENSES:
        raise _Problem(path("ucr_arrest_offense_code"), "is not a known NIBRS offense code")
    if checked["sex"] not in _SEX:
        raise _Problem(path("sex"), "is not a NIBRS sex code (M, F, U)")
    if checked["race"] not in _RACE:
        raise _Problem(path("race"), "is not a NIBRS race code (W, B, A, P, I, U)")
    person = PersonIdentity(given_name="", surname="", birth_date=None, sex=_SEX[checked["sex"]],  # type: ignore[arg-type]
                            race=_RACE[checked["race"]])
    sequence = checked.get("arrestee_sequence", "")
    arrest_number = f"{number}-{sequence}" if sequence else number
    return Arrest(ref=ref, arrest_number=arrest_number, person=person, arrested_at=arrested_at,
                  agency=checked["ori"], charges=(Charge(1, code, UCR_OFFENSES[code], False),),
                  updated_at=updated or arrested_at, incident_number=checked.get("incident_number", ""))


def _month(year: str, month: str) -> datetime:
    if not (year.isdigit() and month.isdigit() and len(year) == 4 and 1 <= int(month) <= 12):
        raise v.FieldProblem("is not a valid month and year")
    return datetime(int(year), int(month), 1, tzinfo=timezone.utc)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _attr(element: etree._Element | None, name: str) -> str:
    if element is None:
        return ""
    for key, value in element.attrib.items():
        if key.rsplit("}", 1)[-1] == name:
            return value
    return ""


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if _local(c.tag) == name]


def _first(element: etree._Element, name: str) -> etree._Element | None:
    found = _children(element, name)
    return found[0] if found else None


def _text(element: etree._Element | None, path: str) -> str:
    """Text of the element at a ``/``-separated path of local names ("" when any step is missing)."""
    for step in path.split("/"):
        if element is None:
            return ""
        element = _first(element, step)
    return (element.text or "").strip() if element is not None else ""
