"""The lawful-sharing step of the pipeline: per recipient, decide what of a built message may leave.

Between "validate" and "sign": look up the recipient's redaction profile (default-deny; no rule for the
message type means nothing is sent), decide consent from the consent registry (read on every record, so
a revocation loaded before a run takes effect in that run), redact, and say what the ledger must record.
The pipeline validates the result again. Part 2 information leaves only under a valid consent and only
with the 42 CFR 2.32 notice in ``nx:PrivacyMetadata``; where the IEPD cannot carry that notice yet, the
record is set aside (quarantined with a reason), never sent without it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from exchange.config import ExchangeConfig, RecipientConfig, resolve
from exchange.consent_registry import ConsentRegistry
from exchange.profiles import load_profile, profile_path
from exchange.state.secrets import load_or_create_secret
from niem_iepd import ns
from transforms import consent as consent_rules
from transforms.model import ClinicalRecord, ConfigError, ConsentRecord, RecordError
from transforms.redaction import (
    Profile,
    Rule,
    derive_need_flag,
    is_part2_record,
    is_substance_use,
    part2_notice,
    redact,
)

if TYPE_CHECKING:  # the runtime imports this module; only the type points back
    from exchange.runtime import Exchange

TOKEN_DIR = "var/tokens"


@dataclass(frozen=True, slots=True)
class RecipientPolicy:
    """What one recipient of one exchange may receive: its profile, classes and token secret."""

    profile: Profile
    classes: tuple[str, ...]
    token_key: bytes
    consent_secret: bytes = b""  # the exchange's index secret: consents on file are matched by its keyed hash


@dataclass(frozen=True, slots=True)
class Prepared:
    """A redacted message ready to sign, and what the ledger says about it."""

    root: etree._Element
    profile: str
    rule: Rule
    categories: tuple[str, ...]
    consent_id: str = ""


def load_policies(config: ExchangeConfig, home: Path, config_path: Path) -> dict[str, RecipientPolicy]:
    """Load every recipient's profile (errors name the profile file and key) and its token secret.

    A recipient whose profile does not list the exchange's message type is a configuration error rather
    than a recipient that silently never receives anything.
    """
    policies = {}
    index_secret = load_or_create_secret(resolve(home, config.index_secret))
    for index, recipient in enumerate(config.recipients):
        path = profile_path(recipient.profile, home)
        try:
            profile = load_profile(path)
        except ConfigError as error:
            if error.problem == "profile does not exist":
                raise ConfigError(str(config_path), f"recipients.{index}.profile", f"{error.problem}: {path}",
                                  error.fix) from None
            raise
        if profile.rule(config.message_type) is None:  # would silently receive nothing: refuse to start
            raise ConfigError(str(config_path), f"recipients.{index}.profile",
                              f"profile {profile.name!r} does not allow {config.message_type}",
                              "choose a profile that lists this message type, or remove the recipient")
        classes = (profile.recipient_class, *recipient.classes)
        key = load_or_create_secret(resolve(home, f"{TOKEN_DIR}/{config.name}.{recipient.id}.secret"))
        policies[recipient.id] = RecipientPolicy(profile, classes, key, index_secret)
    return policies


def for_recipient(ex: Exchange, recipient: RecipientConfig, record: object, root: etree._Element,
                  now: datetime, *, in_place: bool = False) -> Prepared | None:
    """The pipeline's call: :func:`prepare` with the consents on file for the record's patient, read now.

    ``in_place``: ``root`` is redacted itself, not a copy of it (the caller gives it up)."""
    consents: list[ConsentRecord] = []
    policy = ex.policies.get(recipient.id)
    if reads_state(ex, recipient, record):
        # the record was linked before it was built: its shared id lets `consents list` show the person
        shared_id = ex.persons.shared_id_of(ex.source.system, record.ref.record_id)
        consents = ConsentRegistry(ex.engine, policy.consent_secret).for_patient(record.patient_id,
                                                                                 shared_id=shared_id)
    return prepare(policy, recipient, ex.config.message_type, record, root, now, consents, in_place=in_place)


def reads_state(ex: Exchange, recipient: RecipientConfig, record: object) -> bool:
    """True when :func:`for_recipient` reads the state database for this record and recipient (the patient's
    consents on file and the record's shared id); the pipeline then has the record's link committed first."""
    policy = ex.policies.get(recipient.id)
    return bool(policy is not None and getattr(record, "patient_id", "")
                and (part2_labelled(record) or _needs_consent(ex, recipient)))


def _needs_consent(ex: Exchange, recipient: RecipientConfig) -> bool:
    policy = ex.policies.get(recipient.id)
    rule = policy.profile.rule(ex.config.message_type) if policy else None
    return bool(rule and rule.requires_consent)


def ledger_terms(ex: Exchange, recipient: RecipientConfig, message_type: str) -> dict[str, str]:
    """Purpose, legal basis and accounting exemption of a disclosure, from the recipient's profile."""
    policy = ex.policies.get(recipient.id)
    rule = policy.profile.rule(message_type) if policy else None
    if rule is None:  # queued under a profile since changed: the recipient's own statement stands
        return {"purpose": recipient.purpose, "legal_basis": recipient.legal_basis, "accounting_exempt": ""}
    return {"purpose": rule.purpose, "legal_basis": rule.legal_basis, "accounting_exempt": rule.accounting_exempt}


def part2_labelled(record: object) -> bool:
    """True when the record holds any 42 CFR Part 2 information, treated conservatively: a Part 2 program's
    record, a Part 2 / substance-use label, or any substance-use condition (ICD-10-CM F10-F19)."""
    if isinstance(record, ClinicalRecord):
        return is_part2_record(record) or any(is_substance_use(c) for c in record.conditions)
    return bool(getattr(record, "part2_program", False))


def part2_whole(record: object) -> bool:
    """True when everything in the record is Part 2 information (it comes from a Part 2 program)."""
    if isinstance(record, ClinicalRecord):
        return is_part2_record(record)
    return bool(getattr(record, "part2_program", False))


def prepare(
    policy: RecipientPolicy | None,
    recipient: RecipientConfig,
    message_type: str,
    record: object,
    root: etree._Element,
    now: datetime,
    consents: list[ConsentRecord] | None = None,
    *,
    in_place: bool = False,
) -> Prepared | None:
    """Redact ``root`` for ``recipient``; None when nothing may be sent to it.

    Nothing is sent when the profile has no rule for the message type (default-deny), when the rule
    requires a consent and none is valid, or when the record comes from a Part 2 program and no valid
    consent names the recipient (even the person's identity would reveal that they are a patient).
    ``consents``: the consents on file for the record's patient, as the registry returns them. ``in_place``:
    ``root`` itself is redacted (the caller gives it up), else a copy of it.
    """
    if policy is None:
        raise ConfigError("(exchange)", f"recipients.{recipient.id}.profile", "no redaction profile loaded",
                          "open the exchange with open_exchange()")
    rule = policy.profile.rule(message_type)
    if rule is None:
        return None
    part2 = part2_labelled(record)
    consent: ConsentRecord | None = None
    if part2 or rule.requires_consent:
        decision = consent_rules.decide(consents or [], recipient_id=recipient.id,
                                        recipient_classes=policy.classes, purpose=rule.purpose_of_use,
                                        on=now.date(), part2=part2)
        if decision.valid:
            consent = next(c for c in consents or [] if c.consent_id == decision.consent_id)
    if consent is None and (rule.requires_consent or part2_whole(record)):
        return None
    flag_part2 = False
    if isinstance(record, ClinicalRecord):
        given = root
        root, flag_part2 = _reflag(root, record, part2_consent=consent is not None)
        in_place = in_place or root is not given  # a copy of our own already
    result = redact(root, rule, token_key=policy.token_key, part2_record=part2, part2_consent=consent is not None,
                    in_place=in_place)
    out = result.root
    flag_left = out.find(_NEED_FLAG_ANYWHERE) is not None
    disclosed_part2 = consent is not None and part2 and (
        result.part2_disclosed or part2_whole(record) or (flag_part2 and flag_left))
    if disclosed_part2:
        expires = consent.expires_on.isoformat() if consent.expires_on else consent.expiry_event
        notice = part2_notice(consent.consent_id, consent.purpose, consent.information, expires)
        _attach(out, rule.confidentiality or "R", True, notice, consent.consent_id, record)
    elif rule.confidentiality:
        _attach(out, rule.confidentiality, False, "", consent.consent_id if consent else "", record)
    categories = result.categories + (("42 CFR Part 2 information",) if disclosed_part2 else ())
    return Prepared(out, policy.profile.name, rule, categories, consent.consent_id if consent else "")


NEED_FLAG = "nx:BehavioralHealthNeedIndicator"
_NEED_FLAG_ANYWHERE = ".//" + ns.clark(NEED_FLAG)  # built once: this runs for every message


def _reflag(root: etree._Element, record: ClinicalRecord, *, part2_consent: bool) -> tuple[etree._Element, bool]:
    """Set the need flag from :func:`derive_need_flag` (no Part 2 data without consent) on a copy of ``root``."""
    flag = derive_need_flag(record, part2_consent=part2_consent)
    elements = root.findall(_NEED_FLAG_ANYWHERE)
    if not elements:
        return root, False
    root = copy.deepcopy(root)
    for element in root.findall(_NEED_FLAG_ANYWHERE):
        element.text = "true" if flag.need else "false"
    return root, flag.part2_used


def _attach(root: etree._Element, confidentiality: str, part2: bool, notice: str, consent_id: str,
            record: object) -> None:
    """Put ``nx:PrivacyMetadata`` right after ``nx:MessageMetadata`` (built by the IEPD's builder)."""
    try:
        from transforms.mapping.common import insert_privacy_metadata, privacy_metadata
    except ImportError:  # an IEPD without nx:PrivacyMetadata cannot carry the 2.32 notice: send nothing
        raise RecordError(str(getattr(record, "ref", "(record)")), "nx:PrivacyMetadata",
                          "withheld: the IEPD cannot carry the privacy metadata this disclosure needs") from None
    insert_privacy_metadata(root, privacy_metadata(confidentiality, part2, notice, consent_id))
