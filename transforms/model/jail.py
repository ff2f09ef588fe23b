"""Jail management system rows -> :class:`JailBooking`: validation and normalisation, no I/O.

A county JMS export is one bookings row per booking plus charge rows joined on ``booking_number``. This
module turns one booking row and its charge rows, already keyed by our canonical column names (the adapter
maps the county's names to ours), into a typed record, or raises :class:`RecordError` naming the field and
why. Reasons never quote the value: they end up in logs and the quarantine table.

Normalisation: every text is trimmed and its inner whitespace collapsed; names, booking numbers, suffixes and
identifiers are upper-cased (the NCIC convention most JMS already follow); sex codes map to F/M/U/X and race
to the NCIC letters W/B/A/I/U; dates are ISO ``YYYY-MM-DD`` and date-times ISO with a UTC offset (hour-only
offsets such as ``-05`` are accepted, as some JMS write them).

Field paths: top-level fields by canonical column name (``dob``); charge fields as ``charges[i].name`` where
``i`` counts the booking's charge rows as given, from 0 (like a JSON path).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from operator import attrgetter

from transforms.model.errors import RecordError
from transforms.model.records import Charge, JailBooking, PersonIdentity, Sex, SourceRef

BOOKING_COLUMNS: tuple[str, ...] = (
    "internal_person_id", "inmate_number", "first_name", "middle_name", "last_name", "suffix", "dob", "sex",
    "race", "fingerprint_id", "ssn", "booking_number", "jail_entry_date", "jail_exit_date", "facility",
    "booking_agency", "arresting_agency", "updated_date",
)
"""Canonical bookings columns, in the order the demo drop writes them."""

REQUIRED_BOOKING_COLUMNS: tuple[str, ...] = ("booking_number", "first_name", "last_name", "dob", "jail_entry_date")
"""Bookings columns a file must have (and a row must fill) to yield records."""

CHARGE_COLUMNS: tuple[str, ...] = ("booking_number", "charge_sequence", "statute", "description", "severity", "counts")
"""Canonical booking-charges columns."""

REQUIRED_CHARGE_COLUMNS: tuple[str, ...] = ("booking_number", "statute", "severity")
"""Charges columns a charges file must have."""

EARLIEST_BIRTH_DATE = date(1900, 1, 1)
MAX_TEXT = 200  # longer than any name, statute or agency a JMS holds: a sign of a shifted or garbled column

_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LETTER = re.compile(r"[^\W\d_]")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<oh>\d{2})(?::?(?P<om>\d{2}))?)?"
)
# The shapes nearly every file uses, in ASCII digits, hours 00-23 and offsets within +-14:59: read by the standard
# library's parsers, which read exactly these shapes the same way in every Python version this project supports.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ](?:[01]\d|2[0-3]):\d{2}:\d{2}[+-](?:0\d|1[0-4]):[0-5]\d", re.ASCII)
_WHOLE = re.compile(r"\+?\d{1,6}")
_SSN_SEPARATORS = re.compile(r"[\s-]")
_SSN_MASKED = re.compile(r"[0-9X]{9}")
_SSN_DIGITS = re.compile(r"\d{9}")

_SEQUENCE = attrgetter("sequence")

_DATE_FORMAT = "is not a valid date (expected YYYY-MM-DD)"
_DATETIME_FORMAT = "is not a valid date-time (expected YYYY-MM-DDTHH:MM:SS±HH:MM)"

_SEX: dict[str, Sex] = {
    "F": "F", "FEMALE": "F", "WOMAN": "F",
    "M": "M", "MALE": "M", "MAN": "M",
    # Declined, refused, not collected: the person's sex is unknown to the record.
    "U": "U", "UNK": "U", "UNKNOWN": "U", "D": "U", "R": "U", "N": "U", "NOT COLLECTED": "U",
    # Transgender (DSSG MT/FT), other, non-binary: X, the "not exclusively F or M" code of newer NCIC tables.
    "X": "X", "MT": "X", "FT": "X", "O": "X", "OTHER": "X", "NON-BINARY": "X", "NONBINARY": "X",
}

# NCIC race letters. Codes that are not NCIC races (Hispanic is an ethnicity; other, declined, refused, not
# collected; several races at once) become U: race is an optional demographic, not a reason to lose a booking.
_RACE: dict[str, str] = {
    "W": "W", "WHITE": "W", "CAUCASIAN": "W",
    "B": "B", "BLACK": "B", "AFRICAN AMERICAN": "B", "BLACK OR AFRICAN AMERICAN": "B",
    "A": "A", "ASIAN": "A", "P": "A", "PACIFIC ISLANDER": "A", "ASIAN OR PACIFIC ISLANDER": "A",
    "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER": "A",
    "I": "I", "AMERICAN INDIAN": "I", "ALASKA NATIVE": "I", "AMERICAN INDIAN OR ALASKA NATIVE": "I",
    "NATIVE AMERICAN": "I",
    "U": "U", "UNKNOWN": "U",
}

_SEVERITY = {"F": True, "FELONY": True, "M": False, "MISDEMEANOR": False, "MISDEMEANOUR": False}

_SUFFIX = {"JR": "JR", "JUNIOR": "JR", "SR": "SR", "SENIOR": "SR", "II": "II", "2ND": "II", "III": "III",
           "3RD": "III", "IV": "IV", "4TH": "IV", "V": "V", "5TH": "V"}


class _Invalid(Exception):
    """A field's value is unusable; carries the reason only (the caller adds record and field)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def booking_from_row(
    row: Mapping[str, str],
    charges: Sequence[Mapping[str, str]],
    ref: SourceRef,
    *,
    today: date,
    require_charges: bool = True,
    default_tz: tzinfo | None = None,
) -> JailBooking:
    """Validate and normalise one booking row and its charge rows into a :class:`JailBooking`.

    ``row`` and each of ``charges`` are keyed by canonical column names (:data:`BOOKING_COLUMNS`,
    :data:`CHARGE_COLUMNS`); a missing key reads as blank. ``today`` bounds dates of birth and event times
    (nothing may lie in the future); ``require_charges`` rejects a booking without charges (a drop with no
    charges file passes False); ``default_tz`` is the zone of date-times written without a UTC offset, which
    are rejected when it is None. Raises :class:`RecordError` ``(str(ref), field_path, reason)`` for the
    first unusable field, never quoting its value.
    """
    where = str(ref)
    get = row.get
    # One handler for the whole row, ``field`` naming the field being read (a wrapper call per field cost more
    # than the checks themselves). Fields are read in the order their errors are reported.
    field = "booking_number"
    try:
        booking_number = _required(_clean(get(field) or "").upper())
        field = "first_name"
        given = _name(_clean(get(field) or ""), True)
        field = "last_name"
        surname = _name(_clean(get(field) or ""), True)
        field = "middle_name"
        middle = _name(_clean(get(field) or ""), False)
        field = "suffix"
        suffix = _suffix(_clean(get(field) or ""))
        field = "dob"
        birth_date = _birth_date(_clean(get(field) or ""), today)
        field = "sex"
        sex = _sex(_clean(get(field) or ""))
        field = "race"
        race = _race(_clean(get(field) or ""))
        field = "ssn"
        ssn = _ssn(_clean(get(field) or ""))
        field = "jail_entry_date"
        booked_at = _datetime(_required(_clean(get(field) or "")), default_tz, today)
        if birth_date > booked_at.date():
            field = "dob"
            raise _Invalid("is after jail_entry_date")
        field = "jail_exit_date"
        released_at = None
        if exit_text := _clean(get(field) or ""):
            released_at = _datetime(exit_text, default_tz, today)
            if released_at < booked_at:
                raise _Invalid("is before jail_entry_date")
        field = "updated_date"
        if updated_text := _clean(get(field) or ""):
            updated_at = _datetime(updated_text, default_tz, None)
        else:
            # A JMS that does not stamp updates: the latest event on the booking is its last change.
            updated_at = released_at or booked_at
        field = "fingerprint_id"
        state_id = _SPACE.sub("", _clean(get(field) or "")).upper()
        field = "internal_person_id"
        local_person_id = _clean(get(field) or "")

        # Charges raise their own RecordError (their field paths carry the charge's index).
        parsed = tuple(_charge(where, i, c) for i, c in enumerate(charges))
        seen: set[int] = set()
        for i, charge in enumerate(parsed):
            if charge.sequence in seen:
                raise RecordError(where, f"charges[{i}].charge_sequence", "repeats an earlier charge's sequence")
            seen.add(charge.sequence)
        if require_charges and not parsed:
            raise RecordError(where, "charges", "at least one charge is required")

        field = "facility"
        facility = _clean(get(field) or "")
        field = "booking_agency"
        booking_agency = _clean(get(field) or "")
        field = "arresting_agency"
        arresting_agency = _clean(get(field) or "")
    except _Invalid as problem:
        reason = problem.reason
    else:
        person = PersonIdentity(
            given_name=given,
            surname=surname,
            birth_date=birth_date,
            middle_name=middle,
            name_suffix=suffix,
            sex=sex,
            race=race,
            state_id=state_id,
            ssn=ssn,
            local_person_id=local_person_id,
        )
        return JailBooking(
            ref=ref,
            booking_number=booking_number,
            person=person,
            booked_at=booked_at,
            facility=facility,
            booking_agency=booking_agency,
            arresting_agency=arresting_agency,
            charges=tuple(sorted(parsed, key=_SEQUENCE)),
            updated_at=updated_at,
            released_at=released_at,
        )
    # Raised outside the handler so the RecordError has no chained context that could hold a value.
    raise RecordError(where, field, reason)


def _charge(where: str, index: int, row: Mapping[str, str]) -> Charge:
    """One charge row -> :class:`Charge`; field paths are ``charges[index].column``."""
    get = row.get
    field = "charge_sequence"
    try:
        sequence = _whole(_clean(get(field) or ""), index + 1)
        field = "statute"
        statute = _required(_clean(get(field) or ""))
        field = "description"
        description = _clean(get(field) or "")
        field = "severity"
        felony = _severity(_clean(get(field) or ""))
        field = "counts"
        counts = _whole(_clean(get(field) or ""), 1)
    except _Invalid as problem:
        reason = problem.reason
    else:
        return Charge(sequence=sequence, statute=statute, description=description, felony=felony, counts=counts)
    raise RecordError(where, f"charges[{index}].{field}", reason)


def _clean(value: str) -> str:
    """Trim and collapse whitespace; refuse control characters and implausibly long text."""
    if value.isascii() and value.isprintable():
        # Most text: no control characters, and no whitespace but the space (two tests in C, no regex).
        value = (_SPACE.sub(" ", value) if "  " in value else value).strip()
    elif _CONTROL.search(value):
        raise _Invalid("contains control characters")
    else:
        value = _SPACE.sub(" ", value).strip()
    if len(value) > MAX_TEXT:
        raise _Invalid(f"is longer than {MAX_TEXT} characters")
    return value


def _required(value: str) -> str:
    if not value:
        raise _Invalid("is required")
    return value


def _name(value: str, required: bool) -> str:
    if not value:
        if required:
            raise _Invalid("is required")
        return ""
    if not _LETTER.search(value):
        raise _Invalid("contains no letters")
    return value.upper()


def _suffix(value: str) -> str:
    key = value.upper().replace(".", "").replace(",", "").strip()
    return _SUFFIX.get(key, key)


def _sex(value: str) -> Sex:
    if not value:
        return "U"
    code = _SEX.get(value.upper())
    if code is None:
        raise _Invalid("is not a recognised sex code (expected F, M, U or X)")
    return code


def _race(value: str) -> str:
    """NCIC race letter; blank stays blank (not stated), anything unrecognised is U (unknown)."""
    if not value:
        return ""
    return _RACE.get(value.upper(), "U")


def _ssn(value: str) -> str:
    digits = _SSN_SEPARATORS.sub("", value).upper()
    if not digits:
        return ""
    if _SSN_MASKED.fullmatch(digits) and "X" in digits:
        return ""  # masked by the source: as good as not given
    if not _SSN_DIGITS.fullmatch(digits):
        raise _Invalid("is not a 9-digit number")
    return digits


def _birth_date(value: str, today: date) -> date:
    if not value:
        raise _Invalid("is required")
    born = _date(value)
    if born > today:
        raise _Invalid("is in the future")
    if born < EARLIEST_BIRTH_DATE:
        raise _Invalid("is before 1900-01-01")
    return born


def _date(value: str) -> date:
    parsed = None
    try:
        if _ISO_DATE.fullmatch(value):
            parsed = date.fromisoformat(value)
        elif match := _DATE.fullmatch(value):
            parsed = date(int(match[1]), int(match[2]), int(match[3]))  # digits of another script
    except ValueError:  # a day that does not exist
        parsed = None
    if parsed is None:
        raise _Invalid(_DATE_FORMAT)
    return parsed


def _datetime(value: str, default_tz: tzinfo | None, today: date | None) -> datetime:
    """An aware date-time; naive ones take ``default_tz`` or are refused; after ``today`` (UTC) refused."""
    if _ISO_DATETIME.fullmatch(value):
        # What isoformat() writes, with the hour and the offset in range (what nearly every JMS sends): the
        # standard library's parser makes the same date-time as the general reading below, in a quarter of the time.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:  # a day that does not exist
            parsed = None
    else:
        parsed = _written_datetime(value, default_tz)
    if parsed is None:
        raise _Invalid(_DATETIME_FORMAT)
    # A UTC offset is under 24 hours, so a local date before today is never tomorrow in UTC: most date-times
    # need no conversion to know.
    if today is not None and parsed.date() >= today:
        try:
            future = parsed.astimezone(timezone.utc).date() > today
        except OverflowError:  # after 9999-12-31 in UTC (the only way out of range from here)
            future = True
        if future:
            raise _Invalid("is in the future")
    return parsed


def _written_datetime(value: str, default_tz: tzinfo | None) -> datetime | None:
    """Any date-time :data:`_DATETIME` reads; None for a day or time that does not exist."""
    match = _DATETIME.fullmatch(value)
    if not match:
        raise _Invalid(_DATETIME_FORMAT)
    year, month, day, hour, minute, second, fraction, utc, sign, oh, om = match.groups()
    zone: tzinfo | None = None
    if utc:
        zone = timezone.utc
    elif sign:
        zone = _offset_zone(sign, int(oh), int(om or 0))
    elif default_tz is not None:
        zone = default_tz
    else:
        raise _Invalid("has no UTC offset (expected YYYY-MM-DDTHH:MM:SS±HH:MM)")
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro,
                        tzinfo=zone)
    except ValueError:
        return None


@lru_cache(maxsize=None)  # fixed-offset zones, made once: at most 2 x 15 x 60 of them
def _offset_zone(sign: str, hours: int, minutes: int) -> timezone:
    """The zone of a written UTC offset (``-05:00``); beyond +-14:59 it is no offset."""
    if hours > 14 or minutes > 59:
        raise _Invalid(_DATETIME_FORMAT)
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if sign == "-" else offset)


def _whole(value: str, default: int) -> int:
    if not value:
        return default
    if not _WHOLE.fullmatch(value):
        raise _Invalid("is not a whole number")
    number = int(value)
    if number < 1:
        raise _Invalid("must be at least 1")
    return number


def _severity(value: str) -> bool:
    if not value:
        raise _Invalid("is required")
    felony = _SEVERITY.get(value.upper())
    if felony is None:
        raise _Invalid("is not a recognised severity (expected F or M)")
    return felony
