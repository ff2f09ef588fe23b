"""Deterministic person matching: the keys under which a person's records are linked.

This is the first tier of identity resolution (strong identifiers, then name + date of birth). It is pure:
it turns what a source knows about a person into match keys, strongest first. The person index in
``exchange/state`` stores only keyed hashes of these keys (never the names or numbers themselves) and maps
them to an opaque shared identifier that is never derived from PHI.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from transforms.model import PersonIdentity

_NON_ALNUM = re.compile(r"[^A-Z0-9]")
_SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}$")


@dataclass(frozen=True, slots=True)
class MatchKey:
    """One key under which a person can be found; ``strength`` orders conflicting candidates (high wins)."""

    kind: str
    value: str = ""
    strength: int = 0

    def __repr__(self) -> str:  # the value is PHI
        return f"MatchKey({self.kind!r}, strength={self.strength})"

    @property
    def text(self) -> str:
        """The canonical text that the person index hashes."""
        return f"{self.kind}:{self.value}"


def fold(text: str) -> str:
    """Upper-case ASCII letters and digits only: ``"O'Brien-Smith Jr."`` -> ``"OBRIENSMITHJR"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NON_ALNUM.sub("", ascii_text.upper())


def match_keys(person: PersonIdentity, system: str) -> list[MatchKey]:
    """Return the keys for ``person`` as seen by ``system``, strongest first.

    State ID (fingerprint-based) and FBI number hold across systems; an SSN only when it is structurally
    valid (placeholders such as 999999999 link unrelated people); a source's own person id only within
    that source; name + date of birth last, as the weakest deterministic key.
    """
    keys: list[MatchKey] = []
    if sid := fold(person.state_id):
        keys.append(MatchKey("sid", sid, 50))
    if fbi := fold(person.fbi_number):
        keys.append(MatchKey("fbi", fbi, 50))
    ssn = fold(person.ssn)
    if _SSN.match(ssn):
        keys.append(MatchKey("ssn", ssn, 40))
    if local := fold(person.local_person_id):
        keys.append(MatchKey(f"local.{system}", local, 30))
    surname, given = fold(person.surname), fold(person.given_name)
    if surname and given and person.birth_date:
        keys.append(MatchKey("name-dob", f"{surname}|{given}|{person.birth_date.isoformat()}", 10))
    return keys
