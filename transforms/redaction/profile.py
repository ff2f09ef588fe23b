"""Redaction profiles as plain values: which message types a recipient may receive and what of them.

A :class:`Profile` is what ``exchange/profiles/*.yaml`` becomes once checked. Each message type the
recipient may receive has a :class:`Rule`: the allow-list of NIEM element paths (default-deny: whatever is
not on it, or not an ancestor of something on it, is removed), per-field transforms, and the purpose and
legal basis every disclosure under it is recorded with. Paths are prefixed NIEM names relative to the
message root, written with the prefixes of :data:`niem_iepd.ns.PREFIXES` (``j:Booking/nc:ActivityDate``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Transform(str, Enum):
    """What happens to the text of an allowed element before it leaves."""

    DROP = "drop"  # removed, even if an ancestor is allowed
    MASK = "mask"  # text replaced by a fixed marker (the element's presence is still disclosed)
    BIRTH_YEAR = "birth_year"  # nc:Date -> nc:Year (Safe Harbor keeps the year)
    ZIP3 = "zip3"  # first three digits, "000" for the sparsely populated ZIP3 areas (Safe Harbor)
    TOKEN = "token"  # keyed HMAC token instead of an identifier, stable per agreement


#: Message types of the exchange catalogue (ARCHITECTURE.md); a profile may name one before it is built.
MESSAGE_TYPES = (
    "BookingNotification", "ReleaseNotification", "CrisisContactReport", "BehavioralHealthAlert",
    "FamiliarFacesRoster", "ProgramMetrics",
)


@dataclass(frozen=True, slots=True)
class Rule:
    """How one message type is cut down for one recipient, and why it may be sent at all."""

    message_type: str
    allow: tuple[str, ...]
    purpose: str
    legal_basis: str
    transforms: tuple[tuple[str, Transform], ...] = ()
    #: Empty when the disclosure must appear in an accounting; else the 45 CFR 164.528(a)(1) exemption.
    accounting_exempt: str = ""
    #: HL7 PurposeOfUse code matched against a consent's purpose (TREAT, COC, PUBHLTH, ...).
    purpose_of_use: str = ""
    #: True when the rule itself needs a consent on file (e.g. treatment disclosures of Part 2 records).
    requires_consent: bool = False
    #: HL7 confidentiality code for nx:PrivacyMetadata on every message ("" : only when Part 2 needs it).
    confidentiality: str = ""


@dataclass(frozen=True, slots=True)
class Profile:
    """A recipient class's redaction profile: one rule per message type it may receive."""

    name: str
    recipient_class: str
    description: str
    rules: dict[str, Rule] = field(default_factory=dict)

    def rule(self, message_type: str) -> Rule | None:
        """The rule for ``message_type``, or None: default-deny, the recipient receives nothing of it."""
        return self.rules.get(message_type)
