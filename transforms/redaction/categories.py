"""What each element of a message *is*, as a category of information (for the ledger and Part 2).

The accounting of disclosures (45 CFR 164.528(b)(2)(iii)) needs "a brief description of the protected
health information disclosed"; we describe it by the categories of the elements that actually left after
redaction. A category is found by the longest registered suffix of an element's path, so the same table
serves every message type that reuses NIEM components.
"""
from __future__ import annotations

from functools import lru_cache

#: Path suffix (prefixed names) -> category. Longest suffix wins.
CATEGORIES: dict[str, str] = {
    "nx:MessageMetadata": "",  # about the message, not the person
    "nc:PersonName": "name",
    "nc:PersonBirthDate": "birth date",
    "nc:PersonOtherIdentification": "shared person identifier",
    "j:PersonStateFingerprintIdentification": "state identification number",
    "j:PersonAugmentation": "state identification number",
    "j:PersonRaceCode": "demographics",
    "j:PersonSexCode": "demographics",
    "nc:PersonSexCode": "demographics",
    "nc:ContactInformation": "contact information",
    "nc:Address": "address",
    "nc:LocationPostalCode": "address",
    "j:Booking/nc:ActivityIdentification": "booking identifiers",
    "j:BookingAgencyRecordIdentification": "booking identifiers",
    "j:Booking/nc:ActivityDate": "booking date",
    "j:BookingAgency": "booking agency and facility",
    "j:BookingDetentionFacility": "booking agency and facility",
    "j:ArrestAgency": "arrest agency",
    "j:ArrestCharge": "charges",
    "nc:TelephoneNumberFullID": "contact information",
    # BehavioralHealthAlert (nx extension): a need flag and a point of contact, never a diagnosis.
    "nx:BehavioralHealthNeedIndicator": "behavioral-health need flag",
    "nx:CrisisPlanOnFileIndicator": "crisis plan on file",
    "nx:AdvanceDirectiveOnFileIndicator": "advance directive on file",
    "nx:CaseManagerContact": "case-manager contact",
    "nx:LastEncounterDate": "treatment",
    "nx:Diagnosis": "diagnosis",
    "nx:PrivacyMetadata": "",
}

#: Categories removed from a record that carries Part 2-labelled content unless a valid consent names the
#: recipient: they may describe the substance-use treatment itself. (The need flag is re-derived without
#: Part 2 data instead, see :mod:`transforms.redaction.need`; a whole Part 2 record leaves only with consent.)
PART2_CATEGORIES = frozenset({"diagnosis", "treatment"})

#: Labels (FHIR meta.security codes, HL7 DS4P / IHE PCF) that mark Part 2 / substance-use content.
PART2_LABELS = frozenset({"42CFRPart2", "ETH", "ETHUD", "OPIOIDUD", "SUD"})


@lru_cache(maxsize=8192)  # a message type has a few dozen distinct paths; redaction asks for each leaf
def category_of(path: str) -> str | None:
    """The category of the element at ``path`` (prefixed names); "" for non-personal, None if unknown."""
    best: tuple[int, str] | None = None
    for suffix, category in CATEGORIES.items():
        if (path == suffix or path.endswith("/" + suffix)) and (best is None or len(suffix) > best[0]):
            best = (len(suffix), category)
    if best is None:
        # An ancestor may carry the category (everything under nc:PersonName is "name").
        parent, _, _ = path.rpartition("/")
        return category_of(parent) if parent else None
    return best[1]
