"""Generated people and their records, with the errors real extracts have, for training and benchmarks.

Deterministic for a seed. Each person gets one or more records; each record may carry a nickname, a typo in
a name, a married surname, a birth date with day and month transposed or one digit wrong, or missing
fields. Families add the hard cases: twins (same surname, birth date, address and phone) and fathers and
sons who share a name. Names are made from syllables so a million records still spread over many surnames
(real name frequencies are steeper; the blocking keys are chosen to cope with both).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta

from transforms.identity_nicknames import _GROUPS

_GIVEN_F = ("MARY", "ELIZABETH", "JENNIFER", "SUSAN", "MARGARET", "SARAH", "JESSICA", "KIMBERLY", "DEBORAH",
            "PATRICIA", "BARBARA", "CATHERINE", "REBECCA", "VICTORIA", "SAMANTHA", "STEPHANIE", "MICHELLE",
            "ANGELA", "CYNTHIA", "PAMELA", "JUDITH", "TERESA", "ABIGAIL", "ISABEL", "ALEXANDRA", "LATOYA",
            "KEISHA", "MARISOL", "GUADALUPE", "XIOMARA", "DESTINY", "BRIANNA", "TANISHA", "YOLANDA", "LUCIA",
            "NGOC", "MEI", "AALIYAH", "HANNAH", "OLIVIA", "EMMA", "SOPHIA", "CHLOE", "GRACE", "ZOE", "NORA")
_GIVEN_M = ("JAMES", "JOHN", "ROBERT", "MICHAEL", "WILLIAM", "DAVID", "RICHARD", "JOSEPH", "THOMAS",
            "CHARLES", "CHRISTOPHER", "DANIEL", "MATTHEW", "ANTHONY", "DONALD", "STEPHEN", "ANDREW",
            "JOSHUA", "KENNETH", "EDWARD", "TIMOTHY", "JEFFREY", "GREGORY", "LAWRENCE", "RAYMOND",
            "BENJAMIN", "SAMUEL", "NICHOLAS", "ZACHARY", "DESHAWN", "JAMAL", "CARLOS", "JUAN", "LUIS",
            "MIGUEL", "HUNG", "WEI", "TYRONE", "MALIK", "ETHAN", "LIAM", "NOAH", "MASON", "LOGAN", "AIDEN")
_ONSETS = ("B", "BR", "C", "CH", "D", "F", "G", "GR", "H", "J", "K", "L", "M", "N", "P", "R", "S", "SH", "ST",
           "T", "TH", "V", "W", "Y", "Z", "AL", "AN", "EL", "OR", "MC", "O", "DEL", "VAN")
_NUCLEI = ("A", "E", "I", "O", "U", "AI", "EA", "OU", "IE", "Y")
_CODAS = ("N", "RS", "LL", "RT", "MS", "NG", "LEY", "TON", "SON", "MAN", "EZ", "ER", "ON", "ETT", "INS",
          "WELL", "FORD", "BY", "ICK", "OWSKI", "ELLI", "OS", "AR", "ES", "UM", "ARD", "ALL")
_STREETS = ("MAIN", "OAK", "PINE", "MAPLE", "CEDAR", "ELM", "WASHINGTON", "LAKE", "HILL", "PARK", "RIVER",
            "MARTIN LUTHER KING", "SUNSET", "HIGHLAND", "JEFFERSON", "LINCOLN", "FRANKLIN", "CHURCH", "MILL")
_KINDS = ("STREET", "AVENUE", "ROAD", "DRIVE", "LANE", "COURT", "BOULEVARD", "WAY", "PLACE")
_NICK = {formal: variants for formal, variants in _GROUPS.items() if variants}


@dataclass(frozen=True, slots=True)
class Person:
    """One generated person (what the records are noisy copies of)."""

    person_id: int
    given_name: str
    middle_name: str
    surname: str
    name_suffix: str
    birth_date: date | None
    sex: str
    street_address: str
    postal_code: str
    phone: str
    ssn: str


def _surname(rng: random.Random) -> str:
    return (rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
            + (rng.choice(_NUCLEI) + rng.choice(_CODAS) if rng.random() < 0.5 else "")).capitalize()


def _person(rng: random.Random, person_id: int) -> Person:
    sex = rng.choice("FM")
    given = rng.choice(_GIVEN_F if sex == "F" else _GIVEN_M).capitalize()
    middle = rng.choice(_GIVEN_F if sex == "F" else _GIVEN_M).capitalize() if rng.random() < 0.6 else ""
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 65))
    street = f"{rng.randrange(1, 9999)} {rng.choice(_STREETS).title()} {rng.choice(_KINDS).title()}"
    return Person(person_id, given, middle, _surname(rng), "", born, sex, street,
                  f"{rng.randrange(10000, 99999)}", f"{rng.randrange(200, 999)}{rng.randrange(2000000, 9999999)}",
                  f"{rng.randrange(1, 665):03d}{rng.randrange(1, 99):02d}{rng.randrange(1, 9999):04d}")


def people(count: int, seed: int = 7) -> list[Person]:
    """``count`` people; about 1% twins and 1% father/son pairs sharing a name (suffix JR on the son)."""
    rng = random.Random(seed)
    out: list[Person] = []
    while len(out) < count:
        person = _person(rng, len(out))
        out.append(person)
        roll = rng.random()
        if roll < 0.01 and len(out) < count:  # a twin: same surname, birth date, home; another given name
            names = _GIVEN_F if person.sex == "F" else _GIVEN_M
            twin_name = rng.choice([n for n in names if n.capitalize() != person.given_name]).capitalize()
            out.append(replace(person, person_id=len(out), given_name=twin_name, middle_name="",
                               ssn=_person(rng, 0).ssn))
        elif roll < 0.02 and len(out) < count and person.birth_date and person.birth_date.year < 1975:
            son_born = person.birth_date + timedelta(days=rng.randrange(20 * 365, 35 * 365))
            out.append(replace(person, person_id=len(out), sex="M", name_suffix="JR", birth_date=son_born,
                               ssn=_person(rng, 0).ssn, phone=_person(rng, 0).phone))
    return out


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.random()
    if kind < 0.4:
        return text[:i] + rng.choice("AEIOURSTLNM") + text[i + 1:]
    if kind < 0.7:
        return text[:i] + text[i + 1:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def corrupt(person: Person, rng: random.Random) -> Person:
    """One noisy record of ``person``: the error rates of a messy county extract."""
    p = person
    r = rng.random
    if r() < 0.10 and p.given_name.upper() in _NICK:
        p = replace(p, given_name=rng.choice(_NICK[p.given_name.upper()]).capitalize())
    if r() < 0.05:
        p = replace(p, given_name=_typo(rng, p.given_name))
    if r() < 0.05:
        p = replace(p, surname=_typo(rng, p.surname))
    if p.sex == "F" and r() < 0.04:  # married name, new or double-barrelled
        p = replace(p, surname=_surname(rng) if r() < 0.5 else f"{p.surname}-{_surname(rng)}")
    if r() < 0.01:
        p = replace(p, given_name=p.surname, surname=p.given_name)  # fields swapped at entry
    if p.birth_date and r() < 0.02 and p.birth_date.day <= 12 and p.birth_date.day != p.birth_date.month:
        p = replace(p, birth_date=date(p.birth_date.year, p.birth_date.day, p.birth_date.month))
    elif p.birth_date and r() < 0.04:
        p = replace(p, birth_date=p.birth_date + timedelta(days=rng.choice((-1, 1, 10, -10, 365, -365))))
    if r() < 0.04:
        p = replace(p, birth_date=None)
    if r() < 0.5:
        p = replace(p, middle_name="" if r() < 0.7 else p.middle_name[:1])
    if r() < 0.5:
        p = replace(p, ssn="")
    if r() < 0.4:
        p = replace(p, phone="")
    if r() < 0.3:
        p = replace(p, street_address="", postal_code="")
    elif r() < 0.1:
        p = replace(p, street_address=f"{rng.randrange(1, 9999)} {rng.choice(_STREETS).title()} St",
                    postal_code=f"{rng.randrange(10000, 99999)}")
    if r() < 0.05:
        p = replace(p, sex="")
    return p


def records(count: int, seed: int = 7) -> list[Person]:
    """``count`` noisy records of about ``count / 2`` people; ``person_id`` is the ground truth."""
    rng = random.Random(seed + 1)
    population = people(max(1, count // 2), seed)
    out = [corrupt(p, rng) for p in population]
    while len(out) < count:
        frequent = rng.random() < 0.3  # "familiar faces": a tenth of the people have a third of the repeats
        pick = rng.randrange(max(1, len(population) // 10)) if frequent else rng.randrange(len(population))
        out.append(corrupt(population[pick], rng))
    return out[:count]


def values(person: Person) -> dict[str, object]:
    """The :data:`transforms.identity_normalise.FIELDS` mapping of a generated record."""
    return {"given_name": person.given_name, "middle_name": person.middle_name, "surname": person.surname,
            "name_suffix": person.name_suffix, "birth_date": person.birth_date, "sex": person.sex,
            "street_address": person.street_address, "postal_code": person.postal_code,
            "phone": person.phone, "ssn": person.ssn}
