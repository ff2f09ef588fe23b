"""Normalisation for probabilistic matching: a person's fields -> comparison tokens.

Every comparison the probabilistic tier makes is an *equality* between two tokens (``"ROBERT" == "ROBERT"``
after nickname folding, ``"S530" == "S530"`` for Smith/Smyth by Soundex, a birth date against the other
record's birth date with day and month swapped). Because only equality is needed, the same comparisons
work on keyed hashes of the tokens: the person index stores HMACs, never names or dates, and two agencies
can link on HMACs under a shared per-agreement secret (see :mod:`transforms.identity_tokens`).

Tokens are plain strings; ``""`` means "unknown" (a comparison with an unknown side counts as neither
agreement nor disagreement). The token names are the contract between this module, the comparison spec in
:mod:`transforms.identity_comparisons` and the Splink model in ``exchange/identity``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from functools import lru_cache

from transforms.identity import fold
from transforms.identity_nicknames import canonical_given_name
from transforms.model import PersonIdentity

FIELDS = (
    "given_name", "middle_name", "surname", "name_suffix", "birth_date", "sex", "street_address",
    "postal_code", "city", "phone", "ssn",
)
"""The input fields :func:`tokens_for` understands (all optional); the ``identity link`` column mapping."""

TOKENS = (
    "given", "given_canon", "given_sdx", "given_init", "middle", "middle_canon",
    "sn", "sn1", "sn2", "sn_sdx", "suffix",
    "dob", "dob_swap", "dob_ym", "dob_yd", "dob_md", "dob_y",
    "sex", "street", "street_name", "postcode", "city", "phone", "ssn",
    "given_del", "sn_del", "ssn_del",
)
"""Every token :func:`tokens_for` returns, in a fixed order (column order of Splink input tables)."""

_SUFFIXES = {"JR": "JR", "JNR": "JR", "JUNIOR": "JR", "SR": "SR", "SNR": "SR", "SENIOR": "SR",
             "I": "I", "II": "II", "III": "III", "IV": "IV", "V": "V", "2ND": "II", "3RD": "III", "4TH": "IV"}
_PARTICLES = {"DE", "DA", "DEL", "DELA", "DI", "DU", "LA", "LE", "VAN", "VON", "DER", "DEN", "ST", "MC", "MAC",
              "O", "Y"}
_WORD = re.compile(r"[A-Z0-9]+")
_STREET_WORDS = {
    "STREET": "ST", "STR": "ST", "AVENUE": "AVE", "AV": "AVE", "ROAD": "RD", "DRIVE": "DR", "LANE": "LN",
    "BOULEVARD": "BLVD", "COURT": "CT", "PLACE": "PL", "TERRACE": "TER", "CIRCLE": "CIR", "HIGHWAY": "HWY",
    "PARKWAY": "PKWY", "SQUARE": "SQ", "TRAIL": "TRL", "WAY": "WAY", "CRESCENT": "CRES", "CLOSE": "CL",
    "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W", "NORTHEAST": "NE", "NORTHWEST": "NW",
    "SOUTHEAST": "SE", "SOUTHWEST": "SW", "APARTMENT": "APT", "UNIT": "APT", "SUITE": "STE", "NUMBER": "NO",
}
_UNIT_MARKERS = {"APT", "STE", "NO", "FLAT", "RM", "ROOM", "LOT", "BLDG"}
_SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}$")
_PLACEHOLDER_PHONES = {"0000000000", "9999999999", "1234567890", "5555555555"}
_SOUNDEX_CODES = {**dict.fromkeys("BFPV", "1"), **dict.fromkeys("CGJKQSXZ", "2"), **dict.fromkeys("DT", "3"),
                  "L": "4", **dict.fromkeys("MN", "5"), "R": "6"}


def soundex(folded: str) -> str:
    """American Soundex of a folded name (``"SMYTH"`` -> ``"S530"``); ``""`` for no letters.

    H and W do not separate letters with the same code; vowels do (the standard rule).
    """
    letters = "".join(c for c in folded if c.isalpha())
    if not letters:
        return ""
    code, last = letters[0], _SOUNDEX_CODES.get(letters[0], "")
    for char in letters[1:]:
        digit = _SOUNDEX_CODES.get(char, "")
        if digit and digit != last:
            code += digit
            if len(code) == 4:
                break
        if char not in "HW":
            last = digit
    return code.ljust(4, "0")


def name_words(text: str) -> list[str]:
    """Upper-case ASCII words of a name, accents removed (``"José-Luis"`` -> ``["JOSE", "LUIS"]``)."""
    return _WORD.findall(fold_keep_spaces(text))


def fold_keep_spaces(text: str) -> str:
    """Like :func:`transforms.identity.fold` but keeps word breaks (``-``, ``'`` become spaces, ``.`` is dropped)."""
    return " ".join(fold(word) for word in re.split(r"[\s\-,/]+", text.replace("'", "")) if word)


def split_suffix(words: list[str]) -> tuple[list[str], str]:
    """Take a trailing generational suffix off a name's words: ``["SMITH", "JR"]`` -> ``(["SMITH"], "JR")``."""
    if len(words) > 1 and words[-1] in _SUFFIXES:
        return words[:-1], _SUFFIXES[words[-1]]
    return words, ""


def surname_parts(words: list[str]) -> tuple[str, str, str]:
    """Whole surname, first and last part: ``"Garcia-Lopez"`` -> ``("GARCIALOPEZ", "GARCIA", "LOPEZ")``.

    Particles (``de``, ``van``, ``Mc``) stay attached to the whole name but do not count as a part, so
    ``"de la Cruz"`` shares the part ``CRUZ`` with ``"Cruz"``: a married or double-barrelled surname
    still agrees on the part it kept.
    """
    whole = "".join(words)
    parts = [w for w in words if w not in _PARTICLES] or words
    if len(parts) < 2 and parts == words:
        return whole, "", ""
    return whole, parts[0], parts[-1]


SET_SEPARATOR = " "
"""Tokens whose name ends in ``_del`` are sets: variants joined by this separator (see :func:`deletions`)."""


def deletions(text: str) -> str:
    """The value and every variant with one character deleted, as a set token (``"ANN"`` -> ``"ANN NN AN"``).

    Two values within one edit (a character inserted, deleted, replaced, or two neighbours swapped)
    always share a variant, so "one typo apart" becomes an equality test that also works on keyed hashes.
    Values shorter than 4 characters give ``""``: one edit apart is then too weak to mean anything.
    """
    if len(text) < 4:
        return ""
    variants = dict.fromkeys([text] + [text[:i] + text[i + 1:] for i in range(len(text))])
    return SET_SEPARATOR.join(variants)


def date_tokens(value: date | str | None) -> dict[str, str]:
    """Birth-date tokens: exact, day/month swapped, and the three "two parts of three" pairs.

    Accepts a date or an ISO-like string; a partial date (``"1990-02"``, ``"1990-02-XX"``, ``"19900200"``)
    keeps the parts it has, so it can still agree on year and month. The swapped form exists only when it
    is a different valid-looking date (day <= 12 and day != month), which is where keying errors happen.
    """
    year, month, day = _date_parts(value)
    out = {"dob": "", "dob_swap": "", "dob_ym": "", "dob_yd": "", "dob_md": "", "dob_y": year}
    if year and month:
        out["dob_ym"] = f"{year}{month}"
    if year and day:
        out["dob_yd"] = f"{year}{day}"
    if month and day:
        out["dob_md"] = f"{month}{day}"
    if year and month and day:
        out["dob"] = f"{year}{month}{day}"
        if int(day) <= 12 and day != month:
            out["dob_swap"] = f"{year}{day}{month}"
    return out


def _date_parts(value: date | str | None) -> tuple[str, str, str]:
    if value is None:
        return "", "", ""
    if isinstance(value, date):
        return f"{value.year:04d}", f"{value.month:02d}", f"{value.day:02d}"
    text = value.strip()[:10]
    digits = re.sub(r"[^0-9Xx]", "", text)
    if re.fullmatch(r"\d{4}[-/]\d{1,2}[-/]\d{1,2}", text):
        y, m, d = re.split(r"[-/]", text)
    elif len(digits) == 8 and not re.search(r"[-/]", text):
        y, m, d = digits[:4], digits[4:6], digits[6:]
    else:
        pieces = re.split(r"[-/]", text)
        y, m, d = (pieces + ["", "", ""])[:3]
    y = y if re.fullmatch(r"(18|19|20)\d\d", y) else ""
    m = f"{int(m):02d}" if m.isdigit() and 1 <= int(m) <= 12 else ""
    d = f"{int(d):02d}" if d.isdigit() and 1 <= int(d) <= 31 else ""
    return y, m, d


def street_tokens(text: str) -> tuple[str, str]:
    """A normalised street line and its street name alone: ``"12 North Main Street, Apt 4"`` ->
    ``("12 N MAIN ST", "MAIN ST")``. Unit numbers are dropped: people move between units, and
    clerks write them inconsistently."""
    words = [_STREET_WORDS.get(w, w) for w in _WORD.findall(fold_keep_spaces(text))]
    for i, word in enumerate(words):
        if word in _UNIT_MARKERS:
            words = words[:i]
            break
    line = " ".join(words)
    name = " ".join(w for w in words if not w.isdigit() and w not in {"N", "S", "E", "W", "NE", "NW", "SE", "SW"})
    return line, name


def phone_token(text: str) -> str:
    """Ten digits of a North American number (a leading country code 1 dropped); placeholders -> ``""``."""
    digits = re.sub(r"\D", "", text)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits if len(digits) >= 7 and digits[-10:] not in _PLACEHOLDER_PHONES else ""


def ssn_token(text: str) -> str:
    """Digits of a structurally valid SSN, else ``""`` (placeholders such as 999-99-9999 link strangers)."""
    digits = re.sub(r"\D", "", text)
    return digits if _SSN.match(digits) else ""


def tokens_for(values: Mapping[str, object]) -> dict[str, str]:
    """Comparison tokens for one record given as ``{field: value}`` (field names from :data:`FIELDS`).

    Missing or blank fields give ``""`` tokens. The given name's first word is the given name; further
    words count as the middle name when none is given (``"Mary Ann"``). ``ssn`` also accepts other
    national numbers made of digits when they do not look like an SSN (FEBRL's 7-digit ``soc_sec_id``):
    any value of 6+ digits that is not all one digit is kept.
    """
    def text(key: str) -> str:
        value = values.get(key)
        return "" if value is None else str(value)

    given, given_second, given_suffix = _given_words(text("given_name"))
    given_canon, given_sdx, given_del = _given_tokens(given)
    middle = _first_word(text("middle_name")) or given_second
    sn, sn1, sn2, sn_sdx, sn_del, surname_suffix = _surname_tokens(text("surname"))
    dob, dob_swap, dob_ym, dob_yd, dob_md, dob_y = _date_tokens(values.get("birth_date"))  # type: ignore[arg-type]
    street, street_name = street_tokens(text("street_address"))
    ssn, ssn_del = _ssn_tokens(text("ssn"))
    return {  # in the order of TOKENS
        "given": given, "given_canon": given_canon, "given_sdx": given_sdx, "given_init": given[:1],
        "middle": middle, "middle_canon": _canonical(middle),
        "sn": sn, "sn1": sn1, "sn2": sn2, "sn_sdx": sn_sdx,
        "suffix": _suffix(text("name_suffix")) or surname_suffix or given_suffix,
        "dob": dob, "dob_swap": dob_swap, "dob_ym": dob_ym, "dob_yd": dob_yd, "dob_md": dob_md, "dob_y": dob_y,
        "sex": _sex(text("sex")), "street": street, "street_name": street_name,
        "postcode": _postcode(text("postal_code")), "city": _city(text("city")),
        "phone": phone_token(text("phone")), "ssn": ssn,
        "given_del": given_del, "sn_del": sn_del, "ssn_del": ssn_del,
    }


# The tokens of names and other fields shared by many people, remembered per distinct value: given names and
# surnames recur from record to record (the demo drop draws ~150 given names and ~110 surnames), so most
# records need no name normalising at all. Each cache keeps the _MEMO most recently used values (a few MB at
# most); like the records being linked, they stay in this process's memory and are never written anywhere.
# Values nearly unique to a person (SSN, birth date, phone, street address) are not remembered: few records
# would find them.
_MEMO = 4096


@lru_cache(maxsize=_MEMO)
def _given_words(text: str) -> tuple[str, str, str]:
    """First and second word of a given name (``""`` when missing) and its trailing suffix, normalised."""
    words, suffix = split_suffix(name_words(text))
    return (words[0] if words else ""), (words[1] if len(words) > 1 else ""), suffix


@lru_cache(maxsize=_MEMO)
def _given_tokens(given: str) -> tuple[str, str, str]:
    """``given_canon``, ``given_sdx`` and ``given_del`` of a normalised given name."""
    if not given:
        return "", "", deletions(given)
    canon = canonical_given_name(given)
    return canon, soundex(canon), deletions(given)


@lru_cache(maxsize=_MEMO)
def _canonical(name: str) -> str:
    return canonical_given_name(name) if name else ""


@lru_cache(maxsize=_MEMO)
def _first_word(text: str) -> str:
    words = name_words(text)
    return words[0] if words else ""


@lru_cache(maxsize=_MEMO)
def _surname_tokens(text: str) -> tuple[str, str, str, str, str, str]:
    """``sn``, ``sn1``, ``sn2``, ``sn_sdx``, ``sn_del`` and the trailing suffix of a surname."""
    words, suffix = split_suffix(name_words(text))
    sn, sn1, sn2 = surname_parts(words)
    return sn, sn1, sn2, soundex(sn), deletions(sn), suffix


def _date_tokens(value: date | str | None) -> tuple[str, str, str, str, str, str]:
    """:func:`date_tokens` as a tuple, in the order of :data:`TOKENS`."""
    out = date_tokens(value)
    return out["dob"], out["dob_swap"], out["dob_ym"], out["dob_yd"], out["dob_md"], out["dob_y"]


def _ssn_tokens(text: str) -> tuple[str, str]:
    """``ssn`` and ``ssn_del``: a valid SSN, or another national number of 6+ digits not all one digit."""
    digits = re.sub(r"\D", "", text)
    ssn = ssn_token(digits) or (digits if len(digits) >= 6 and len(digits) != 9 and len(set(digits)) > 1 else "")
    return ssn, deletions(ssn)


@lru_cache(maxsize=_MEMO)
def _suffix(text: str) -> str:
    return _SUFFIXES.get(fold(text), "")


@lru_cache(maxsize=_MEMO)
def _sex(text: str) -> str:
    sex = fold(text)[:1]
    return sex if sex in ("F", "M") else ""


@lru_cache(maxsize=_MEMO)
def _postcode(text: str) -> str:
    return re.sub(r"\D", "", text)[:5]


@lru_cache(maxsize=_MEMO)
def _city(text: str) -> str:
    return " ".join(name_words(text))


def person_values(person: PersonIdentity) -> dict[str, object]:
    """The :data:`FIELDS` mapping of a :class:`PersonIdentity` (the pipeline's record model)."""
    return {
        "given_name": person.given_name, "middle_name": person.middle_name, "surname": person.surname,
        "name_suffix": person.name_suffix, "birth_date": person.birth_date, "sex": person.sex,
        "street_address": person.street_address, "postal_code": person.postal_code, "city": "",
        "phone": person.phone, "ssn": person.ssn,
    }


def person_tokens(person: PersonIdentity) -> dict[str, str]:
    """Comparison tokens of a :class:`PersonIdentity`."""
    return tokens_for(person_values(person))
