"""Redaction per recipient: profiles as values, the default-deny redaction function, the need flag."""
from transforms.redaction.categories import PART2_CATEGORIES, PART2_LABELS, category_of
from transforms.redaction.engine import Redaction, element_path, generalize_zip, keyed_token, redact
from transforms.redaction.need import NeedFlag, derive_need_flag, is_part2_record, is_substance_use
from transforms.redaction.notice import PART2_NOTICE, part2_notice
from transforms.redaction.profile import MESSAGE_TYPES, Profile, Rule, Transform

__all__ = [
    "MESSAGE_TYPES", "NeedFlag", "PART2_CATEGORIES", "PART2_LABELS", "PART2_NOTICE", "Profile", "Redaction",
    "Rule", "Transform", "category_of", "derive_need_flag", "element_path", "generalize_zip",
    "is_part2_record", "is_substance_use", "keyed_token", "part2_notice", "redact",
]
