"""The behavioral-health need flag: "this person has a known behavioral-health need", nothing more.

Law-enforcement recipients get this flag and a point of contact, never a diagnosis. The flag is derived
from a :class:`~transforms.model.ClinicalRecord` without reading any Part 2 information unless a valid
consent naming the recipient is on file: a flag that exists only because of a substance-use disorder
reveals that disorder, so it is Part 2 information itself (42 CFR 2.11, "patient identifying
information" that identifies someone as having a SUD).
"""
from __future__ import annotations

from dataclasses import dataclass

from transforms.model import ClinicalRecord, Condition
from transforms.redaction.categories import PART2_LABELS

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
#: Labels that mark behavioral-health content that is not Part 2 (IHE PCF sensitivity codes).
BH_LABELS = frozenset({"PSY", "MH", "BH"})


@dataclass(frozen=True, slots=True)
class NeedFlag:
    """The derived flag and what it rests on (``part2_used``: the 2.32 notice must accompany it)."""

    need: bool
    part2_used: bool


def is_substance_use(condition: Condition) -> bool:
    """ICD-10-CM F10-F19 (mental and behavioural disorders due to psychoactive substance use) or a SUD label."""
    if condition.security_labels & PART2_LABELS:
        return True
    code = condition.coding.code.upper().replace(".", "")
    return _is_icd10(condition) and code[:1] == "F" and code[1:3].isdigit() and 10 <= int(code[1:3]) <= 19


def is_behavioral(condition: Condition) -> bool:
    """ICD-10-CM chapter F (F01-F99) or a behavioral-health sensitivity label."""
    if condition.security_labels & (BH_LABELS | PART2_LABELS):
        return True
    code = condition.coding.code.upper()
    return _is_icd10(condition) and code[:1] == "F" and code[1:3].isdigit()


def _is_icd10(condition: Condition) -> bool:
    system = condition.coding.system.lower()
    return system == ICD10CM or "icd-10" in system or "icd10" in system


def is_part2_record(record: ClinicalRecord) -> bool:
    """The whole record is Part 2 information (from a Part 2 program, or labelled 42CFRPart2)."""
    return record.part2_program or bool(record.security_labels & PART2_LABELS)


def derive_need_flag(record: ClinicalRecord, *, part2_consent: bool) -> NeedFlag:
    """Derive the flag from active behavioral conditions and a crisis plan on file.

    Without ``part2_consent`` nothing from a Part 2 record, and no substance-use condition anywhere,
    counts: the flag is then False (indistinguishable from "no known need"), never "withheld", so its
    absence reveals nothing either.
    """
    whole_part2 = is_part2_record(record)
    if whole_part2 and not part2_consent:
        return NeedFlag(False, False)
    used_part2 = False
    need = False
    for condition in record.conditions:
        if not condition.active or not is_behavioral(condition):
            continue
        sud = is_substance_use(condition)
        if sud and not part2_consent:
            continue
        need = True
        used_part2 = used_part2 or sud
    if record.crisis_plan:
        need = True
    if need and (used_part2 or whole_part2):
        return NeedFlag(True, True)
    return NeedFlag(need, False)
