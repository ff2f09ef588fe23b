"""The demo JMS drop: a deterministic, made-up county jail export (``bookings.csv`` + ``booking_charges.csv``).

The shape follows what county jail management systems export (and the DSSG jail-bookings schema): one row per
booking with the person's identifiers, one row per charge. Everyone is invented from lists of common given
names and surnames (a drop of more than 20,000 bookings also from made-up surnames, see ``POOL_BOOKINGS``);
SSNs are drawn from the 900-999 area the SSA never issues, so none can be a real number.

The drop is realistic on purpose: a few "familiar faces" are booked two to six times, some of them under a
differently spelled name (a new jacket, same fingerprint id), and about 4% of the rows carry one deliberate
defect each, listed by :func:`generate_demo_drop` so tests can check that each one is quarantined with the
right field. Regenerate the shipped files with ``python -m exchange.demo.generate``.
"""
from __future__ import annotations

import argparse
import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

BOOKING_HEADER = (
    "internal_person_id", "inmate_number", "first_name", "middle_name", "last_name", "suffix", "dob", "sex",
    "race", "fingerprint_id", "ssn", "booking_number", "jail_entry_date", "jail_exit_date", "facility",
    "booking_agency", "arresting_agency", "updated_date",
)
CHARGE_HEADER = ("booking_number", "charge_sequence", "statute", "description", "severity", "counts")

MALE_NAMES = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Charles",
    "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul", "Andrew", "Joshua",
    "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Jason", "Edward", "Jeffrey", "Ryan",
    "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon",
    "Benjamin", "Samuel", "Gregory", "Alexander", "Patrick", "Frank", "Raymond", "Jack", "Dennis", "Jerry",
    "Tyler", "Aaron", "Jose", "Adam", "Nathan", "Henry", "Zachary", "Douglas", "Peter", "Kyle",
    "Noah", "Ethan", "Jeremy", "Walter", "Christian", "Keith", "Roger", "Terry", "Austin", "Sean",
    "Carlos", "Luis", "Juan", "Marcus", "Darnell", "Terrence", "Andre", "Curtis",
)
FEMALE_NAMES = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
    "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly", "Emily", "Donna", "Michelle",
    "Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Dorothy", "Rebecca", "Sharon", "Laura", "Cynthia",
    "Amy", "Kathleen", "Angela", "Shirley", "Brenda", "Emma", "Anna", "Pamela", "Nicole", "Samantha",
    "Katherine", "Christine", "Debra", "Rachel", "Carolyn", "Janet", "Maria", "Catherine", "Heather", "Diane",
    "Olivia", "Julie", "Joyce", "Victoria", "Ruth", "Virginia", "Lauren", "Kelly", "Christina", "Joan",
    "Tiffany", "Crystal", "Tamika", "Latoya", "Rosa", "Yolanda", "Monica", "Erica",
)
SURNAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes",
    "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper",
    "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson",
    "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes",
    "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez",
    "Peña", "Nuñez", "Washington", "Freeman", "Coleman", "Simmons", "Jenkins", "Perry", "Powell", "Butler",
)
# A large drop draws from more surnames than SURNAMES (see surname_pool): made of these parts, e.g. "Ashford",
# "Kelerton".
SURNAME_HEADS = (
    "Ash", "Bal", "Bar", "Bel", "Black", "Brad", "Brook", "Cal", "Car", "Chad", "Clay", "Cold", "Cran", "Dal",
    "Dun", "Eld", "Elm", "Fair", "Fen", "Fox", "Gar", "Glen", "Gold", "Good", "Hal", "Har", "Hart", "Hol",
    "Kel", "Ken", "Kirk", "Lang", "Lin", "Lock", "Mad", "Mar", "Mel", "Mont", "Nor", "Oak", "Pem", "Pen",
    "Quin", "Rad", "Red", "Ros", "Rut", "Sal", "Shel", "Stan", "Stock", "Tal", "Thorn", "Vance", "Wal",
    "West", "Whit", "Wind", "Wy", "Yar",
)
SURNAME_TAILS = (
    "ford", "ley", "ton", "well", "wood", "man", "by", "dale", "field", "ham", "ridge", "more", "win", "ster",
    "bury", "combe", "den", "gate", "hurst", "land", "low", "mere", "nell", "rick", "shaw", "stead", "thwaite",
    "ward", "wick", "worth", "cott", "bourne", "brook", "croft", "ing", "ock", "away", "ell", "ett", "ick",
)
SURNAME_LINKS = ("", "er", "in", "a", "el", "ing")
POOL_BOOKINGS = 20_000
"""Bookings per SURNAMES-sized share of surnames: a drop of up to this many uses SURNAMES alone (the shipped
300-booking drop and every drop the tests make are such), a larger one ``bookings / POOL_BOOKINGS`` times as
many surnames: a county's jail sees thousands of surnames, not 110. With 110 the person index's blocks (same
surname sound and birth year, say) filled without end: ~16 candidates a search and half the bookings sent to
review at 50,000. Surname sounds still collapse (Soundex codes: 100 up to 20,000 bookings, 256 at 50,000,
1,089 at 1,000,000), so blocks still grow, only far more slowly."""
MIDDLE_INITIALS = "ABCDEFGHIJKLMNOPRSTVW"
SUFFIXES = ("Jr", "Sr", "II", "III")

# Spellings a booking officer plausibly types for the same person.
GIVEN_VARIANTS = {
    "Steven": "Stephen", "Stephen": "Steven", "Jeffrey": "Geoffrey", "Katherine": "Catherine",
    "Catherine": "Katherine", "Sarah": "Sara", "Brian": "Bryan", "Eric": "Erik", "Jon": "John",
    "Jonathan": "Johnathan", "Marcus": "Markus", "Terrence": "Terrance", "Crystal": "Krystal",
    "Rebecca": "Rebekah", "Jose": "José", "Andre": "Andrae", "Tiffany": "Tiffani", "Latoya": "LaToya",
}
SURNAME_VARIANTS = {
    "Thompson": "Thomson", "Phillips": "Philips", "Johnson": "Jonson", "Rodriguez": "Rodriquez",
    "Gonzalez": "Gonzales", "Peterson": "Petersen", "Mitchell": "Mitchel", "Hernandez": "Hernandes",
    "Richardson": "Richerson", "Washington": "Washingon", "Simmons": "Simons", "Nuñez": "Nunez",
    "Peña": "Pena", "Williams": "Williamson", "Jenkins": "Jenkens", "Coleman": "Colman",
}

# (statute, description, severity): Florida-style numbering, descriptions written for this demo.
STATUTES = (
    ("316.193(1)", "Driving under the influence", "M"),
    ("322.34(2)", "Driving while license suspended, knowingly", "M"),
    ("784.03(1)(a)", "Battery", "M"),
    ("784.021(1)(a)", "Aggravated assault with a deadly weapon", "F"),
    ("784.045(1)(a)", "Aggravated battery", "F"),
    ("741.31(4)(a)", "Violation of an injunction for protection", "M"),
    ("810.02(3)", "Burglary of a dwelling", "F"),
    ("810.02(4)", "Burglary of an unoccupied conveyance", "F"),
    ("812.014(3)(a)", "Petit theft", "M"),
    ("812.014(2)(c)", "Grand theft, third degree", "F"),
    ("812.13(2)(c)", "Robbery without a weapon", "F"),
    ("893.13(6)(a)", "Possession of a controlled substance", "F"),
    ("893.13(6)(b)", "Possession of cannabis, 20 grams or less", "M"),
    ("893.147(1)", "Possession of drug paraphernalia", "M"),
    ("893.13(1)(a)(1)", "Sale of a controlled substance", "F"),
    ("843.02", "Resisting an officer without violence", "M"),
    ("843.01", "Resisting an officer with violence", "F"),
    ("856.011", "Disorderly intoxication", "M"),
    ("877.03", "Disorderly conduct, breach of the peace", "M"),
    ("810.09", "Trespass on property other than a structure", "M"),
    ("810.08", "Trespass in a structure or conveyance", "M"),
    ("806.13(1)(b)(1)", "Criminal mischief, $200 or less", "M"),
    ("790.23(1)", "Possession of a firearm by a convicted felon", "F"),
    ("948.06", "Violation of probation", "F"),
    ("843.15(1)(b)", "Failure to appear, misdemeanor", "M"),
    ("817.568(2)(a)", "Fraudulent use of personal identification", "F"),
    ("790.01(1)", "Carrying a concealed weapon", "M"),
    ("316.1935(1)", "Fleeing or attempting to elude an officer", "F"),
)
FACILITIES = (
    ("Example County Main Jail", 70),
    ("Example County Pretrial Detention Center", 25),
    ("Example County Work Release Center", 5),
)
BOOKING_AGENCY = "Example County Sheriff's Office"
ARRESTING_AGENCIES = (
    ("Example County Sheriff's Office", 45),
    ("Exampleton Police Department", 30),
    ("Port Sample Police Department", 12),
    ("North Example Police Department", 8),
    ("Example County Schools Police", 5),
)

FIRST_BOOKING = datetime(2026, 1, 1)
EXTRACTED_AT = datetime(2026, 11, 1, 6, 0)  # local time the JMS wrote the drop; nothing happens after it
FAMILIAR_SHARE = 0.18  # of people: booked more than once
NAME_VARIANT_PEOPLE = 6


@dataclass(frozen=True, slots=True)
class InjectedDefect:
    """One deliberate defect in the drop: where it is and which field a reader must name."""

    file: str
    row: int  # 1-based data row (the header is not counted)
    field: str
    kind: str


@dataclass(frozen=True, slots=True)
class DemoDrop:
    """The two CSV texts of a drop and the defects injected into them."""

    bookings_csv: str
    charges_csv: str
    defects: tuple[InjectedDefect, ...]


@dataclass
class _Person:
    internal_id: str
    inmate_number: str
    first: str
    middle: str
    last: str
    suffix: str
    dob: date
    sex: str
    race: str
    fingerprint: str
    ssn: str
    bookings: int = 1
    variant: tuple[str, str] | None = None  # (first, last) used on the variant booking(s)


@dataclass
class _Booking:
    person: _Person
    entry: datetime
    row: dict[str, str]
    charges: list[dict[str, str]] = field(default_factory=list)


def generate_demo_drop(seed: int = 2026, bookings: int = 300) -> DemoDrop:
    """Build the demo drop in memory: same ``seed`` and ``bookings``, same bytes."""
    if bookings < 50:
        raise ValueError("a demo drop needs at least 50 bookings to hold every kind of defect")
    rng = random.Random(seed)
    ids = _Ids(rng)
    people = _people(rng, ids, bookings)
    booked = _bookings(rng, ids, people)
    defects = _inject_defects(rng, booked)
    return _render(booked, defects)


def write_demo_drop(directory: Path, seed: int = 2026, bookings: int = 300) -> tuple[InjectedDefect, ...]:
    """Write ``bookings.csv`` and ``booking_charges.csv`` into ``directory``; return the injected defects."""
    drop = generate_demo_drop(seed, bookings)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bookings.csv").write_bytes(drop.bookings_csv.encode("utf-8"))
    (directory / "booking_charges.csv").write_bytes(drop.charges_csv.encode("utf-8"))
    return drop.defects


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m exchange.demo.generate [DIRECTORY] [--seed N] [--bookings N]``."""
    parser = argparse.ArgumentParser(description="Write the demo JMS drop (bookings + booking charges).")
    parser.add_argument("directory", nargs="?", type=Path, default=Path(__file__).resolve().parent,
                        help="where to write the two CSV files (default: the packaged demo directory)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    parser.add_argument("--bookings", type=int, default=300, help="number of bookings (default 300)")
    args = parser.parse_args(argv)
    defects = write_demo_drop(args.directory, args.seed, args.bookings)
    print(f"wrote {args.bookings} bookings to {args.directory} with {len(defects)} deliberate defects")


class _Ids:
    """Unique made-up identifiers, drawn without repeats."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def draw(self, make) -> str:
        while True:
            value = make(self._rng)
            if value not in self._used:
                self._used.add(value)
                return value

    def person(self) -> str:
        return self.draw(lambda r: str(r.randint(100000, 999999)))

    def inmate(self) -> str:
        return self.draw(lambda r: f"EC{r.randint(0, 9999999):07d}")

    def fingerprint(self) -> str:
        return self.draw(lambda r: f"FL{r.randint(0, 99999999):08d}")

    def ssn(self) -> str:
        # Area numbers 900-999 are never issued as SSNs.
        return self.draw(lambda r: f"9{r.randint(0, 99):02d}{r.randint(1, 99):02d}{r.randint(1, 9999):04d}")


def surname_pool(bookings: int) -> tuple[str, ...]:
    """The surnames a drop of ``bookings`` draws from: SURNAMES, and for a large drop made-up ones too.

    Up to :data:`POOL_BOOKINGS` bookings exactly SURNAMES (so those drops are what they always were);
    beyond, ``ceil(bookings / POOL_BOOKINGS)`` times as many, the extra ones made of a head, a link and a
    tail in a fixed order (14,400 at most: enough for 2,600,000 bookings).
    """
    shares = -(-bookings // POOL_BOOKINGS)
    if shares <= 1:
        return SURNAMES
    made = [head + link + tail for link in SURNAME_LINKS for tail in SURNAME_TAILS for head in SURNAME_HEADS]
    return SURNAMES + tuple(made[:len(SURNAMES) * (shares - 1)])


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _people(rng: random.Random, ids: _Ids, bookings: int) -> list[_Person]:
    count = round(bookings * 0.735)
    surnames = surname_pool(bookings)
    people = []
    for _ in range(count):
        sex = "M" if rng.random() < 0.76 else "F"
        first = rng.choice(MALE_NAMES if sex == "M" else FEMALE_NAMES)
        middle = rng.choice(MIDDLE_INITIALS) if rng.random() < 0.7 else ""
        suffix = rng.choice(SUFFIXES) if sex == "M" and rng.random() < 0.05 else ""
        age_days = rng.randint(18 * 365 + 5, 68 * 365)
        dob = (EXTRACTED_AT - timedelta(days=age_days)).date()
        race = _weighted(rng, (("W", 52), ("B", 38), ("A", 3), ("I", 2), ("U", 5)))
        people.append(_Person(
            internal_id=ids.person(), inmate_number=ids.inmate(), first=first, middle=middle,
            last=rng.choice(surnames), suffix=suffix, dob=dob, sex=sex, race=race,
            fingerprint=ids.fingerprint(), ssn=ids.ssn() if rng.random() < 0.72 else "",
        ))
    familiar = rng.sample(people, round(count * FAMILIAR_SHARE))
    extra = bookings - count
    while extra > 0:
        person = rng.choice(familiar)
        if person.bookings < 6:
            person.bookings += 1
            extra -= 1
    candidates = [p for p in familiar if p.bookings >= 2 and (p.first in GIVEN_VARIANTS or p.last in SURNAME_VARIANTS)]
    for person in rng.sample(candidates, min(NAME_VARIANT_PEOPLE, len(candidates))):
        first = GIVEN_VARIANTS.get(person.first, person.first)
        last = SURNAME_VARIANTS.get(person.last, person.last) if first == person.first else person.last
        person.variant = (first, last)
    return people


def _central(moment: datetime) -> str:
    """ISO text of a US Central local time with its UTC offset (DST: 2nd Sunday of March to 1st of November)."""
    year = moment.year
    march = date(year, 3, 8)
    dst_start = datetime.combine(march + timedelta(days=(6 - march.weekday()) % 7), datetime.min.time()).replace(hour=2)
    november = date(year, 11, 1)
    dst_end = datetime.combine(november + timedelta(days=(6 - november.weekday()) % 7), datetime.min.time()).replace(hour=2)
    hours = -5 if dst_start <= moment < dst_end else -6
    return moment.replace(second=0, microsecond=0, tzinfo=timezone(timedelta(hours=hours))).isoformat()


def _bookings(rng: random.Random, ids: _Ids, people: list[_Person]) -> list[_Booking]:
    span = int((EXTRACTED_AT - FIRST_BOOKING).total_seconds() // 60) - 24 * 60
    result: list[_Booking] = []
    for person in people:
        entries = sorted(FIRST_BOOKING + timedelta(minutes=rng.randint(0, span)) for _ in range(person.bookings))
        variant_at = rng.randint(1, person.bookings - 1) if person.variant else -1
        for n, entry in enumerate(entries):
            first, last = person.variant if n == variant_at else (person.first, person.last)
            internal_id, inmate = person.internal_id, person.inmate_number
            if n == variant_at:
                # The JMS did not recognise the person under the other spelling: a new jacket.
                internal_id, inmate = ids.person(), ids.inmate()
            short = rng.random() < 0.6  # most people leave within two days (bond, release on recognizance)
            stay = timedelta(minutes=rng.randint(90, 2 * 1440) if short else rng.randint(1440, 60 * 1440))
            exit_at = entry + stay
            released = exit_at < EXTRACTED_AT
            updated = min((exit_at if released else entry) + timedelta(minutes=rng.randint(1, 240)), EXTRACTED_AT)
            row = {
                "internal_person_id": internal_id, "inmate_number": inmate, "first_name": first,
                "middle_name": person.middle, "last_name": last, "suffix": person.suffix,
                "dob": person.dob.isoformat(), "sex": person.sex, "race": person.race,
                "fingerprint_id": person.fingerprint, "ssn": person.ssn, "booking_number": "",
                "jail_entry_date": _central(entry), "jail_exit_date": _central(exit_at) if released else "",
                "facility": _weighted(rng, FACILITIES), "booking_agency": BOOKING_AGENCY,
                "arresting_agency": _weighted(rng, ARRESTING_AGENCIES), "updated_date": _central(updated),
            }
            booking = _Booking(person, entry, row)
            charges = rng.sample(STATUTES, rng.choices((1, 2, 3, 4), weights=(50, 30, 14, 6))[0])
            for seq, (statute, description, severity) in enumerate(charges, start=1):
                counts = rng.choices(("1", "2", "3"), weights=(85, 12, 3))[0]
                booking.charges.append({"booking_number": "", "charge_sequence": str(seq), "statute": statute,
                                        "description": description, "severity": severity, "counts": counts})
            result.append(booking)
    result.sort(key=lambda b: b.entry)
    for n, booking in enumerate(result, start=1):
        number = f"2026{n:06d}"
        booking.row["booking_number"] = number
        for charge in booking.charges:
            charge["booking_number"] = number
    return result


# (kind, field, how many): each defective row carries exactly one of these.
_DEFECTS = (
    ("missing_dob", "dob", 2),
    ("impossible_dob", "dob", 1),
    ("future_dob", "dob", 1),
    ("unknown_sex", "sex", 2),
    ("missing_booking_number", "booking_number", 1),
    ("unparseable_entry_date", "jail_entry_date", 2),
    ("empty_statute", "charges[{i}].statute", 1),
    ("non_numeric_counts", "charges[{i}].counts", 1),
)


@dataclass(frozen=True, slots=True)
class _Defect:
    kind: str
    field: str


def _inject_defects(rng: random.Random, booked: list[_Booking]) -> list[tuple[_Booking, _Defect]]:
    """Damage a few bookings of people booked once (so every familiar face stays whole); add one re-sent row."""
    singles = [b for b in booked if b.person.bookings == 1]
    pick = iter(rng.sample(singles, sum(times for _, _, times in _DEFECTS) + 1))
    damaged: list[tuple[_Booking, _Defect]] = []
    for kind, path, times in _DEFECTS:
        for n in range(times):
            booking = next(pick)
            row = booking.row
            if kind == "missing_dob":
                row["dob"] = ""
            elif kind == "impossible_dob":
                row["dob"] = "1987-13-45"
            elif kind == "future_dob":
                row["dob"] = "2098-05-17"
            elif kind == "unknown_sex":
                row["sex"] = ("Q", "Z")[n % 2]
            elif kind == "missing_booking_number":
                row["booking_number"] = ""
                # The export lost the booking's number; its charges cannot be joined, so the JMS left them out.
                booking.charges.clear()
            elif kind == "unparseable_entry_date":
                row["jail_entry_date"] = ("03/14/2026 2:15 PM", "2026-02-30T08:15:00-06:00")[n % 2]
            else:
                i = rng.randrange(len(booking.charges))
                column = "statute" if kind == "empty_statute" else "counts"
                booking.charges[i][column] = "" if kind == "empty_statute" else "two"
                path = path.format(i=i)
            damaged.append((booking, _Defect(kind, path)))
    damaged.append((next(pick), _Defect("duplicate_booking_number", "booking_number")))
    return damaged


def _render(booked: list[_Booking], damaged: list[tuple[_Booking, _Defect]]) -> DemoDrop:
    by_booking = {id(b): d for b, d in damaged if d.kind != "duplicate_booking_number"}
    resent = next(b for b, d in damaged if d.kind == "duplicate_booking_number")
    # The re-sent row lands a little later in the file, as when a JMS re-exports a corrected page.
    resend_after = min(booked.index(resent) + 17, len(booked) - 1)

    rows: list[dict[str, str]] = []
    defects: list[InjectedDefect] = []
    for n, booking in enumerate(booked):
        rows.append(booking.row)
        defect = by_booking.get(id(booking))
        if defect:
            defects.append(InjectedDefect("bookings.csv", len(rows), defect.field, defect.kind))
        if n == resend_after:
            rows.append(dict(resent.row))
            defects.append(InjectedDefect("bookings.csv", len(rows), "booking_number", "duplicate_booking_number"))

    bookings_out = io.StringIO()
    writer = csv.DictWriter(bookings_out, BOOKING_HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    charges_out = io.StringIO()
    writer = csv.DictWriter(charges_out, CHARGE_HEADER, lineterminator="\n")
    writer.writeheader()
    for booking in booked:
        writer.writerows(booking.charges)
    return DemoDrop(bookings_out.getvalue(), charges_out.getvalue(), tuple(defects))


if __name__ == "__main__":
    main()
