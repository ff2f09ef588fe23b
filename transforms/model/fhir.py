"""FHIR R4 resources (plain JSON dicts) -> :class:`ClinicalRecord` and :class:`ConsentRecord`; no I/O.

Every FHIR source (bundles, Bulk Data NDJSON, a REST server) hands the resources it read to
:func:`records_from_resources`, which groups them by patient and builds one ClinicalRecord per Patient and one
ConsentRecord per Consent, or a :class:`RecordError` whose field path names the resource and element
(``Patient.birthDate``, ``Condition/abc.recordedDate``), never a value.

What a ClinicalRecord keeps (minimum necessary for the behavioral-health exchanges):

* Conditions that are behavioral health: ICD-10(-CM) chapter F codes, the SNOMED CT codes in
  :data:`BEHAVIORAL_SNOMED`, and any Condition carrying a sensitivity label (``meta.security``: 42CFRPart2,
  ETH, PSY, SUD, ...). Other conditions (a sprained ankle) are not part of the record. Labels are kept as
  given, per condition and for the record (Patient ``meta.security``); this module never invents one.
* ``crisis_plan``: an active CarePlan whose category or title says mental-health / psychiatry / crisis / safety
  plan; ``advance_directive``: an active Consent or DocumentReference of an advance-directive kind.
* ``case_manager``: a CareTeam participant whose role is case manager (SNOMED 768730001 or the text).
* ``last_encounter_at``: the latest Encounter start; ``updated_at``: the latest ``meta.lastUpdated`` among
  the patient's resources, else the latest clinical date (deterministic, so the record digest is stable).

ConsentRecord, from FHIR Consent (R4, tolerant of the R5-style layout the LEAP fixtures use: the scope in
``category``): ``recipients`` lists the actors of the root provision when it permits (``*`` when it names
none: anyone not denied) and ``!<reference>`` for actors a nested ``deny`` provision excludes;
``information`` lists permitted classes / labels / codes and ``!<code>`` for denied ones; ``expires_on`` is
``provision.period.end``; ``part2`` is True when a permit provision names the 42CFRPart2 label or policy.
Redaction treats anything it does not understand as a refusal (default deny).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timezone

from transforms.model import values as v
from transforms.model.errors import RecordError
from transforms.model.records import (
    ClinicalRecord,
    Coding,
    Condition,
    ConsentRecord,
    ContactPoint,
    PersonIdentity,
    SourceRef,
)

ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})
SNOMED = "http://snomed.info/sct"
BEHAVIORAL_SNOMED: frozenset[str] = frozenset({
    "370143000", "35489007", "36923009", "47505003", "192127007", "58214004", "13746004", "197480006",
    "80583007", "73595000", "7200002", "66590003", "5602001", "6525002", "26416006", "55680006",
    "10939881000119105", "191736004", "69322001",
})
"""SNOMED CT conditions kept as behavioral health (depression, PTSD, ADD, psychosis, anxiety, substance use)."""

SENSITIVE_LABELS = frozenset({"42CFRPart2", "ETH", "PSY", "PSYTHPN", "SUD", "MH", "BH", "HIV", "SDV", "R", "V"})
"""``meta.security`` codes that make a Condition part of the behavioral-health record whatever its code."""

CASE_MANAGER_ROLES = frozenset({"768730001", "case manager", "case-manager", "casemanager"})
ADVANCE_DIRECTIVE_CODES = frozenset({"acd", "adr", "42348-3", "75320-2", "64298-3", "advance-directive"})
CLINICAL_TYPES = frozenset({"Patient", "Condition", "Encounter", "CarePlan", "CareTeam", "Consent",
                            "DocumentReference"})
"""Resource types the mapping reads; others (Observation, Claim, ...) are not part of these records."""

_GENDER = {"male": "M", "female": "F", "other": "X", "unknown": "U"}
_OMB_RACE = {"2106-3": "W", "2054-5": "B", "2028-9": "A", "2076-8": "A", "1002-5": "I", "2131-1": "U"}
_CONSENT_STATUS = frozenset({"active", "inactive", "rejected", "draft", "proposed", "entered-in-error"})
_RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"


def patient_of(resource: Mapping[str, object], aliases: Mapping[str, str] | None = None) -> str:
    """The id of the patient a resource belongs to ("" when none): its own id for a Patient, else its
    ``subject``/``patient``/``beneficiary`` reference (``Patient/ID``, or a bundle ``urn:uuid:`` alias)."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id") or "")
    for key in ("subject", "patient", "beneficiary"):
        ref = resource.get(key)
        if isinstance(ref, Mapping) and isinstance(ref.get("reference"), str):
            target = ref["reference"]
            if aliases and target in aliases:
                return aliases[target]
            if target.startswith("Patient/"):
                return target.split("/", 2)[1]
            if "/Patient/" in target:
                return target.rsplit("/Patient/", 1)[1].split("/", 1)[0]
    return ""


def records_from_resources(
    resources: Iterable[tuple[str, Mapping[str, object]]], *, system: str, today: date,
    aliases: Mapping[str, str] | None = None,
) -> Iterator[ClinicalRecord | ConsentRecord | RecordError]:
    """Group ``(locator, resource)`` pairs by patient; a record or a RecordError per Patient and per Consent.

    Resources of a patient missing from the input are not silently lost: each such group yields a RecordError
    (``Patient``: "the export holds resources for a patient it does not include"). ``aliases`` maps a bundle's
    ``urn:uuid:`` full URLs to Patient ids.
    """
    by_patient: dict[str, list[tuple[str, Mapping[str, object]]]] = {}
    patients: dict[str, tuple[str, Mapping[str, object]]] = {}
    consents: list[tuple[str, Mapping[str, object]]] = []
    for locator, resource in resources:
        kind = resource.get("resourceType")
        if kind == "Consent":
            consents.append((locator, resource))
        if kind not in CLINICAL_TYPES:
            continue
        pid = patient_of(resource, aliases)
        if kind == "Patient":
            patients[pid] = (locator, resource)
        else:
            by_patient.setdefault(pid, []).append((locator, resource))
    for pid, (locator, patient) in patients.items():
        ref = SourceRef(system, locator, pid)
        try:
            yield clinical_record(patient, [r for _, r in by_patient.get(pid, [])], ref, today=today)
        except RecordError as error:
            yield error
    for pid, group in by_patient.items():
        if pid not in patients and any(r.get("resourceType") != "Consent" for _, r in group):
            yield RecordError(str(SourceRef(system, group[0][0], pid)), "Patient",
                              "resources refer to a patient this input does not include")
    for locator, consent in consents:
        ref = SourceRef(system, locator, str(consent.get("id") or ""))
        try:
            yield consent_record(consent, ref)
        except RecordError as error:
            yield error


def clinical_record(patient: Mapping[str, object], related: Iterable[Mapping[str, object]], ref: SourceRef, *,
                    today: date) -> ClinicalRecord:
    """One Patient and the resources that refer to it -> ClinicalRecord (see the module docstring)."""
    where = "Patient"
    try:
        if patient.get("resourceType") != "Patient":
            raise v.FieldProblem("is not a Patient resource")
        pid = v.text(patient.get("id"), required=True, limit=64)
        person = _person(patient, today)
        labels = _labels(patient)
        stamps = [_last_updated(patient)]
        conditions: list[Condition] = []
        crisis_plan = advance_directive = False
        case_manager: ContactPoint | None = None
        last_encounter: datetime | None = None
        for resource in related:
            kind = str(resource.get("resourceType"))
            where = f"{kind}/{v.text(resource.get('id'), limit=64) or '?'}"
            stamps.append(_last_updated(resource))
            if kind == "Condition":
                condition = _condition(resource)
                if condition is not None:
                    conditions.append(condition)
                    if condition.recorded_on:
                        stamps.append(datetime(condition.recorded_on.year, condition.recorded_on.month,
                                               condition.recorded_on.day, tzinfo=timezone.utc))
            elif kind == "Encounter":
                start = _encounter_start(resource)
                if start is not None:
                    stamps.append(start)
                    last_encounter = start if last_encounter is None or start > last_encounter else last_encounter
            elif kind == "CarePlan":
                crisis_plan = crisis_plan or _is_crisis_plan(resource)
            elif kind == "CareTeam":
                case_manager = case_manager or _case_manager(resource)
            elif kind in ("Consent", "DocumentReference"):
                advance_directive = advance_directive or _is_advance_directive(resource)
        where = "Patient"
        known = [s for s in stamps if s is not None]
        if not known and person.birth_date is not None:
            known = [datetime(person.birth_date.year, person.birth_date.month, person.birth_date.day,
                              tzinfo=timezone.utc)]
        if not known:
            raise _At("Patient.meta.lastUpdated", "is required when the record holds no dated resource")
    except _At as problem:
        raise RecordError(str(ref), problem.path if problem.path.startswith(("Patient", "Condition", "Encounter",
                          "CarePlan", "CareTeam", "Consent", "DocumentReference")) else f"{where}.{problem.path}",
                          problem.reason) from None
    except v.FieldProblem as problem:
        raise RecordError(str(ref), f"{where}.id", problem.args[0]) from None
    return ClinicalRecord(
        ref=ref, patient_id=pid, person=person, updated_at=max(known),
        conditions=tuple(sorted(conditions, key=lambda c: (c.coding.system, c.coding.code, str(c.recorded_on)))),
        crisis_plan=crisis_plan, advance_directive=advance_directive, case_manager=case_manager,
        last_encounter_at=last_encounter, security_labels=labels, part2_program="42CFRPart2" in labels,
    )


def consent_record(consent: Mapping[str, object], ref: SourceRef) -> ConsentRecord:
    """One FHIR Consent -> ConsentRecord (see the module docstring for how provisions are read)."""
    path = "Consent"
    try:
        if consent.get("resourceType") != "Consent":
            raise _At("Consent.resourceType", "is not Consent")
        identifiers = consent.get("identifier") or []
        first_id = identifiers[0].get("value") if isinstance(identifiers, list) and identifiers and isinstance(
            identifiers[0], Mapping) else ""
        path = "Consent.id"
        consent_id = v.text(consent.get("id") or first_id, required=True, limit=128)
        path = "Consent.patient"
        patient_id = patient_of(consent)
        if not patient_id:
            raise v.FieldProblem("is required (a reference to the Patient)")
        patient_id = v.text(patient_id, limit=64)
        path = "Consent.status"
        status = v.text(consent.get("status"), required=True)
        if status not in _CONSENT_STATUS:
            raise v.FieldProblem("is not a known Consent status")
        path = "Consent.organization"
        orgs = consent.get("organization") or consent.get("performer") or []
        discloser = v.text(_ref_text(orgs[0]) if isinstance(orgs, list) and orgs else "")
        path = "Consent.dateTime"
        signed = v.a_date(consent.get("dateTime"))
        path = "Consent.provision"
        root = consent.get("provision") or {}
        if not isinstance(root, Mapping):
            raise v.FieldProblem("is not an object")
        permit = root.get("type", "permit") == "permit"
        path = "Consent.provision.period.end"
        period = root.get("period") or {}
        expires = v.a_date(period.get("end")) if isinstance(period, Mapping) else None
        path = "Consent.provision"
        recipients: list[str] = []
        information: list[str] = []
        part2 = False
        if permit:
            actors = [_ref_text(a.get("reference")) for a in _list(root.get("actor"))]
            if any(actors):
                recipients.extend(a for a in actors if a)
            else:
                recipients.append("*")
            information.extend(_provision_codes(root))
            part2 = "42CFRPart2" in _provision_codes(root) or "42CFRPart2" in _codes(consent.get("policyRule"))
        for nested in _list(root.get("provision")):
            if nested.get("type") == "deny" or not permit:
                recipients.extend("!" + a for a in (_ref_text(x.get("reference")) for x in _list(nested.get("actor")))
                                  if a)
                information.extend("!" + c for c in _provision_codes(nested))
            else:
                recipients.extend(a for a in (_ref_text(x.get("reference")) for x in _list(nested.get("actor"))) if a)
                information.extend(_provision_codes(nested))
                part2 = part2 or "42CFRPart2" in _provision_codes(nested)
        purposes = [c for p in _list(root.get("purpose")) for c in [_code(p)] if c]
        scope = _codes(consent.get("scope")) + [c for cat in _list(consent.get("category")) for c in _codes(cat)
                                                if c in ("patient-privacy", "research", "treatment", "adr")]
        purpose = v.text(",".join(purposes) or (scope[0] if scope else ""))
        path = "Consent.meta.lastUpdated"
        updated = _last_updated(consent) or v.a_datetime(consent.get("dateTime"), required=False)
        if updated is None:
            raise v.FieldProblem("is required (or Consent.dateTime)")
        texts = [v.text(x, limit=256) for x in recipients + information]
    except _At as problem:
        raise RecordError(str(ref), problem.path, problem.reason) from None
    except v.FieldProblem as problem:
        raise RecordError(str(ref), path, problem.args[0]) from None
    return ConsentRecord(
        ref=ref, consent_id=consent_id, patient_id=patient_id, discloser=discloser,
        recipients=tuple(dict.fromkeys(texts[:len(recipients)])), purpose=purpose,
        information=tuple(dict.fromkeys(texts[len(recipients):])),
        status=status, signed_on=signed, expires_on=expires, updated_at=updated,  # type: ignore[arg-type]
        part2=part2, revoked_on=None,
    )


# -- pieces --------------------------------------------------------------------------------------------------

class _At(Exception):
    """A problem at an explicit element path."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path, self.reason = path, reason


def _person(patient: Mapping[str, object], today: date) -> PersonIdentity:
    names = [n for n in _list(patient.get("name"))]
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if official is None:
        raise _At("Patient.name", "is required")
    given = [g for g in official.get("given") or [] if isinstance(g, str)]
    try:
        first = v.name(given[0] if given else "", required=True)
    except v.FieldProblem as problem:
        raise _At("Patient.name.given", problem.args[0]) from None
    try:
        middle = v.name(" ".join(given[1:]))
    except v.FieldProblem as problem:
        raise _At("Patient.name.given", problem.args[0]) from None
    try:
        surname = v.name(official.get("family"), required=True)
    except v.FieldProblem as problem:
        raise _At("Patient.name.family", problem.args[0]) from None
    try:
        born = v.birth_date(patient.get("birthDate"), today=today)
    except v.FieldProblem as problem:
        raise _At("Patient.birthDate", problem.args[0]) from None
    gender = patient.get("gender")
    if gender is not None and gender not in _GENDER:
        raise _At("Patient.gender", "is not a known administrative gender code")
    race = ""
    for ext in _list(patient.get("extension")):
        if ext.get("url") == _RACE_URL:
            for part in _list(ext.get("extension")):
                coding = part.get("valueCoding")
                if part.get("url") == "ombCategory" and isinstance(coding, Mapping):
                    race = race or _OMB_RACE.get(str(coding.get("code")), "U")
    ssn = mrn = ""
    for ident in _list(patient.get("identifier")):
        kinds = _codes(ident.get("type"))
        try:
            value = v.text(ident.get("value"), limit=64)
        except v.FieldProblem as problem:
            raise _At("Patient.identifier.value", problem.args[0]) from None
        if "SS" in kinds or ident.get("system") == "http://hl7.org/fhir/sid/us-ssn":
            digits = value.replace("-", "")
            if len(digits) != 9 or not digits.isdigit():
                raise _At("Patient.identifier(SS).value", "is not a 9-digit number")
            ssn = digits
        elif "MR" in kinds and not mrn:
            mrn = value.upper()
    address = next(iter(_list(patient.get("address"))), {})
    phone = next((t.get("value") for t in _list(patient.get("telecom")) if t.get("system") == "phone"), "")
    try:
        street = v.text(" ".join(x for x in address.get("line") or [] if isinstance(x, str)))
        postal = v.text(address.get("postalCode"), limit=16)
        phone = v.text(phone, limit=40)
    except v.FieldProblem as problem:
        raise _At("Patient.address", problem.args[0]) from None
    return PersonIdentity(given_name=first, surname=surname, birth_date=born, middle_name=middle,
                          sex=_GENDER.get(str(gender), "U"), race=race, ssn=ssn,  # type: ignore[arg-type]
                          local_person_id=mrn or str(patient.get("id") or "").upper(), street_address=street,
                          postal_code=postal, phone=phone)


def _condition(resource: Mapping[str, object]) -> Condition | None:
    """A behavioral-health Condition, or None when the condition is of another kind."""
    labels = _labels(resource)
    codings = [c for c in _list((resource.get("code") or {}).get("coding") if isinstance(resource.get("code"),
               Mapping) else None)]
    chosen = next((c for c in codings if c.get("system") in ICD10_SYSTEMS and str(c.get("code", "")).upper()
                   .startswith("F")), None)
    chosen = chosen or next((c for c in codings if c.get("system") == SNOMED and c.get("code") in BEHAVIORAL_SNOMED),
                            None)
    if chosen is None and labels & SENSITIVE_LABELS and codings:
        chosen = codings[0]
    if chosen is None:
        return None
    ident = v.text(resource.get("id"), limit=64) or "?"
    try:
        coding = Coding(v.text(chosen.get("system"), required=True, limit=256),
                        v.text(chosen.get("code"), required=True, limit=64), v.text(chosen.get("display")))
    except v.FieldProblem as problem:
        raise _At(f"Condition/{ident}.code", problem.args[0]) from None
    try:
        recorded = v.a_date(resource.get("recordedDate") or resource.get("onsetDateTime"))
    except v.FieldProblem as problem:
        raise _At(f"Condition/{ident}.recordedDate", problem.args[0]) from None
    clinical = _codes(resource.get("clinicalStatus"))
    return Condition(coding=coding, recorded_on=recorded,
                     active=not clinical or bool({"active", "recurrence", "relapse"} & set(clinical)),
                     security_labels=labels)


def _encounter_start(resource: Mapping[str, object]) -> datetime | None:
    period = resource.get("period")
    if not isinstance(period, Mapping):
        return None
    try:
        return v.a_datetime(period.get("start"), required=False)
    except v.FieldProblem as problem:
        raise _At(f"Encounter/{resource.get('id') or '?'}.period.start", problem.args[0]) from None


def _is_crisis_plan(resource: Mapping[str, object]) -> bool:
    if resource.get("status") not in ("active", "on-hold"):
        return False
    words = " ".join([str(resource.get("title") or "")] + [
        str(c.get("display") or "") + " " + str(cat.get("text") or "")
        for cat in _list(resource.get("category")) for c in _list(cat.get("coding"))]).lower()
    codes = {c for cat in _list(resource.get("category")) for c in _codes(cat)}
    return bool(codes & {"718347000", "736254008", "crisis-plan"}) or any(
        w in words for w in ("mental health", "psychiatr", "crisis", "safety plan"))


def _case_manager(resource: Mapping[str, object]) -> ContactPoint | None:
    if resource.get("status") not in (None, "active", "proposed"):
        return None
    for part in _list(resource.get("participant")):
        roles = {c.lower() for role in _list(part.get("role")) for c in _codes(role) + [str(role.get("text") or "")]}
        if roles & CASE_MANAGER_ROLES:
            member = part.get("member") if isinstance(part.get("member"), Mapping) else {}
            org = resource.get("managingOrganization")
            phone = next((t.get("value") for t in _list(resource.get("telecom")) if t.get("system") == "phone"), "")
            try:
                return ContactPoint(name=v.text(member.get("display")),
                                    organization=v.text(_ref_text(org[0]) if isinstance(org, list) and org else ""),
                                    phone=v.text(phone, limit=40), role="case manager")
            except v.FieldProblem as problem:
                raise _At(f"CareTeam/{resource.get('id') or '?'}.participant", problem.args[0]) from None
    return None


def _is_advance_directive(resource: Mapping[str, object]) -> bool:
    if resource.get("status") not in ("active", "current"):
        return False
    codes = set(_codes(resource.get("scope")) + _codes(resource.get("type")))
    codes |= {c for cat in _list(resource.get("category")) for c in _codes(cat)}
    return bool(codes & ADVANCE_DIRECTIVE_CODES)


def _labels(resource: Mapping[str, object]) -> frozenset[str]:
    meta = resource.get("meta")
    if not isinstance(meta, Mapping):
        return frozenset()
    return frozenset(str(s.get("code")) for s in _list(meta.get("security")) if s.get("code"))


def _last_updated(resource: Mapping[str, object]) -> datetime | None:
    meta = resource.get("meta")
    if not isinstance(meta, Mapping) or not meta.get("lastUpdated"):
        return None
    try:
        return v.a_datetime(meta.get("lastUpdated"))
    except v.FieldProblem as problem:
        raise _At(f"{resource.get('resourceType')}/{resource.get('id') or '?'}.meta.lastUpdated",
                  problem.args[0]) from None


def _provision_codes(provision: Mapping[str, object]) -> list[str]:
    found = [str(c.get("code")) for c in _list(provision.get("class")) if c.get("code")]
    found += [str(c.get("code")) for c in _list(provision.get("securityLabel")) if c.get("code")]
    found += [c for concept in _list(provision.get("code")) for c in _codes(concept)]
    return found


def _codes(concept: object) -> list[str]:
    """The codes of a CodeableConcept (or of a bare Coding)."""
    if not isinstance(concept, Mapping):
        return []
    if "code" in concept and "coding" not in concept:
        return [str(concept["code"])]
    return [str(c.get("code")) for c in _list(concept.get("coding")) if c.get("code")]


def _code(item: Mapping[str, object]) -> str:
    return str(item.get("code") or "")


def _ref_text(ref: object) -> str:
    if isinstance(ref, Mapping):
        return str(ref.get("reference") or ref.get("display") or "")
    return ""


def _list(value: object) -> list[Mapping[str, object]]:
    """The dict items of a JSON array (FHIR repeats); anything else is empty."""
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, list):
        return []
    return [x for x in value if isinstance(x, Mapping)]
