"""Redaction profiles shipped with niem-exchange, and the loader that checks any profile YAML.

A recipient's ``profile`` in the exchange YAML is either the name of a shipped profile (a file in this
directory, e.g. ``behavioral-health-provider``) or a path to a YAML file of the same shape. Every problem
is a :class:`ConfigError` naming the file, the key and the fix. See ``README.md`` here for what each
shipped profile lets leave, to whom, under which rule.
"""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from niem_iepd.ns import PREFIXES
from transforms.model import ConfigError
from transforms.redaction import MESSAGE_TYPES, Profile, Rule, Transform

_STEP = r"[a-z][a-z-]*:[A-Za-z][A-Za-z0-9]*"
_PATH = re.compile(rf"^{_STEP}(/{_STEP})*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSpec(_Strict):
    """One message type a recipient may receive."""

    purpose: str = Field(min_length=1, description="Purpose of use, as the ledger and accounting print it.")
    legal_basis: str = Field(min_length=1, description="The rule that permits the disclosure (CFR cite).")
    purpose_of_use: str = Field("", description="HL7 PurposeOfUse code a consent's purpose must match.")
    accounting_exempt: str = Field("", description="45 CFR 164.528(a)(1) exemption; empty: accountable.")
    requires_consent: bool = Field(False, description="Send only with a valid consent on file.")
    confidentiality: Literal["", "U", "L", "M", "N", "R", "V"] = Field(
        "", description="HL7 confidentiality code: attach nx:PrivacyMetadata to every message under this rule.")
    allow: list[str] = Field(min_length=1, description="NIEM element paths that may leave; all else removed.")
    transforms: dict[str, Transform] = Field(default_factory=dict,
                                             description="Path -> drop | mask | birth_year | zip3 | token.")

    @field_validator("allow")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            _check_path(path)
        return value

    @field_validator("transforms")
    @classmethod
    def _transform_paths(cls, value: dict[str, Transform]) -> dict[str, Transform]:
        for path in value:
            _check_path(path)
        return value


class ProfileSpec(_Strict):
    """A redaction profile file."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Profile name (file stem).")
    recipient_class: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
                                 description="Class consents may name as class:<recipient_class>.")
    description: str = Field(min_length=1, description="Who this profile is for, in one sentence.")
    message_types: dict[str, RuleSpec] = Field(description="Message type -> rule; others are never sent.")

    @field_validator("message_types")
    @classmethod
    def _known_types(cls, value: dict[str, RuleSpec]) -> dict[str, RuleSpec]:
        for name in value:
            if name not in MESSAGE_TYPES:
                raise ValueError(f"unknown message type {name!r} (known: {', '.join(MESSAGE_TYPES)})")
        return value


def _check_path(path: str) -> None:
    if not _PATH.match(path):
        raise ValueError(f"{path!r} is not a path of prefixed names like j:Booking/nc:ActivityDate")
    for step in path.split("/"):
        prefix = step.split(":", 1)[0]
        if prefix not in PREFIXES:
            raise ValueError(f"{path!r}: unknown prefix {prefix!r} (known: {', '.join(PREFIXES)})")


def shipped_dir() -> Path:
    """The directory of the shipped profiles."""
    return Path(str(resources.files("exchange.profiles")))


def shipped_profiles() -> list[Path]:
    """Every shipped profile file."""
    return sorted(shipped_dir().glob("*.yaml"))


def profile_path(ref: str, home: Path) -> Path:
    """A profile reference -> its file: a shipped name, or a path (relative to the exchange home)."""
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        path = Path(ref).expanduser()
        return path if path.is_absolute() else home / path
    return shipped_dir() / f"{ref}.yaml"


def load_profile(path: Path) -> Profile:
    """Read and check one profile YAML; problems are ConfigErrors naming the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "(file)", "profile does not exist",
                          f"name a shipped profile ({', '.join(p.stem for p in shipped_profiles())}) "
                          "or the path of a profile YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(str(path), f"line {mark.line + 1}" if mark else "(file)", "is not valid YAML",
                          "check indentation and quoting") from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "(file)", "must be a mapping of keys",
                          "start from exchange/profiles/behavioral-health-provider.yaml")
    try:
        spec = ProfileSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top)"
        fix = {"missing": "add this key", "extra_forbidden": "remove it or check its spelling",
               "enum": "use one of drop, mask, birth_year, zip3, token"}.get(
            first["type"], "see exchange/profiles/README.md")
        raise ConfigError(str(path), key, first["msg"].lower().removeprefix("value error, "), fix) from None
    for message_type, rule in spec.message_types.items():
        for target in rule.transforms:
            if not any(target == a or target.startswith(a + "/") for a in rule.allow):
                raise ConfigError(str(path), f"message_types.{message_type}.transforms.{target}",
                                  "transforms an element the allow-list does not let leave",
                                  "allow the element (or an ancestor) or remove the transform")
    return Profile(
        name=spec.name,
        recipient_class=spec.recipient_class,
        description=spec.description,
        rules={
            mt: Rule(message_type=mt, allow=tuple(r.allow), purpose=r.purpose, legal_basis=r.legal_basis,
                     transforms=tuple(r.transforms.items()), accounting_exempt=r.accounting_exempt,
                     purpose_of_use=r.purpose_of_use, requires_consent=r.requires_consent,
                     confidentiality=r.confidentiality)
            for mt, r in spec.message_types.items()
        },
    )
