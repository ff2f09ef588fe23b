"""Is this consent valid for this disclosure? A pure decision over a :class:`ConsentRecord`.

42 CFR 2.31 requires a written consent to name the patient, who may disclose, how much and what kind
of information, the recipients (by name, or for some uses a general designation / class), the purpose,
the right to revoke, and an expiry date, event or condition. A disclosure under a consent is valid only
when the consent is active, signed, not expired, not revoked on or before the disclosure date, names
the recipient or a class the recipient belongs to, covers the purpose, and, for Part 2 information,
explicitly authorizes it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from transforms.model import ConsentRecord

CLASS_PREFIX = "class:"


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """The outcome and, when refused, why (a reason a privacy officer can act on; no patient values)."""

    valid: bool
    reason: str
    consent_id: str = ""


def names_recipient(consent: ConsentRecord, recipient_id: str, recipient_classes: Iterable[str]) -> bool:
    """True when the consent names ``recipient_id`` or one of its classes (``class:law-enforcement``)."""
    classes = {c.strip().lower().removeprefix(CLASS_PREFIX) for c in recipient_classes}
    for named in consent.recipients:
        value = named.strip().lower()
        if value.startswith(CLASS_PREFIX):
            if value.removeprefix(CLASS_PREFIX) in classes:
                return True
        elif value == recipient_id.lower():
            return True
    return False


def check(
    consent: ConsentRecord,
    *,
    recipient_id: str,
    recipient_classes: Iterable[str],
    purpose: str,
    on: date,
    part2: bool,
) -> ConsentDecision:
    """Decide one consent for one disclosure on day ``on``; ``part2``: the disclosure carries Part 2 data."""
    refuse = lambda reason: ConsentDecision(False, reason, consent.consent_id)  # noqa: E731
    if consent.status != "active":
        return refuse(f"status is {consent.status}")
    if consent.signed_on is None:
        return refuse("not signed (no signature date)")
    if on < consent.signed_on:
        return refuse("signed after the disclosure date")
    if consent.revoked_on is not None and consent.revoked_on <= on:
        return refuse(f"revoked on {consent.revoked_on.isoformat()}")
    if consent.expires_on is not None and on > consent.expires_on:
        return refuse(f"expired on {consent.expires_on.isoformat()}")
    if consent.expires_on is None and not consent.expiry_event:
        return refuse("no expiration date or event (42 CFR 2.31(a)(6))")
    if not names_recipient(consent, recipient_id, recipient_classes):
        return refuse("does not name this recipient or its class")
    if not consent.purpose.strip():
        return refuse("states no purpose")
    if purpose and consent.purpose.strip().lower() not in (purpose.strip().lower(), "*"):
        return refuse("purpose does not cover this disclosure")
    if part2 and not consent.part2:
        return refuse("does not authorize Part 2 information")
    return ConsentDecision(True, "valid", consent.consent_id)


def decide(
    consents: Iterable[ConsentRecord],
    *,
    recipient_id: str,
    recipient_classes: Iterable[str],
    purpose: str,
    on: date,
    part2: bool,
) -> ConsentDecision:
    """The first valid consent among ``consents``, or a refusal carrying the last reason (none: no consent)."""
    classes = tuple(recipient_classes)
    last = ConsentDecision(False, "no consent on file")
    for consent in consents:
        decision = check(consent, recipient_id=recipient_id, recipient_classes=classes, purpose=purpose,
                         on=on, part2=part2)
        if decision.valid:
            return decision
        last = decision
    return last
