"""The person index's fast paths give exactly what the plain functions give.

:class:`Scorer` (one record against many) must equal :func:`score` to the last bit of the weight, and
:class:`TokenKeyer` (one keyed HMAC state, a memo) must equal :func:`keyed_tokens`, also after its memo has
filled and emptied. Pairs come from generated records with every error the generator makes (nicknames,
typos, married names, transposed dates, twins, fathers and sons), so every comparison level is reached.
"""
from __future__ import annotations

import random
from dataclasses import replace
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.identity import synthetic
from exchange.identity.model import default_parameters
from transforms.identity_comparisons import COMPARISONS, Parameters, Scorer, score
from transforms.identity_normalise import tokens_for
from transforms.identity_tokens import TokenKeyer, keyed_token, keyed_tokens

SECRET = b"k" * 32


def _tokens(count: int, seed: int) -> list[dict[str, str]]:
    return [tokens_for(synthetic.values(p)) for p in synthetic.records(count, seed=seed)]


def _variants(person: synthetic.Person, rng: random.Random) -> list[dict[str, object]]:
    """The person's field values (with a city and a suffix) and copies with each kind of error alone, so
    that every level of every comparison occurs."""
    born = person.birth_date
    nick = {"WILLIAM": "Bill", "ROBERT": "Bob", "MARGARET": "Peggy", "ELIZABETH": "Liz"}.get(
        person.given_name.upper(), person.given_name)
    given, surname, ssn = person.given_name, person.surname, person.ssn
    copies = [
        synthetic.corrupt(person, rng),
        replace(person, given_name=nick),
        replace(person, given_name=given[0] + given[2:]),  # one letter dropped
        replace(person, given_name=person.middle_name or given, middle_name=given),
        replace(person, given_name=surname, surname=given),
        replace(person, surname=f"{surname}-Okafor", ssn=ssn[:-1] + str((int(ssn[-1]) + 1) % 10)),
        replace(person, surname=surname[:-1], given_name=given[0] + "x", birth_date=None),
        replace(person, birth_date=date(born.year, born.day, born.month) if born.day <= 12 else born, sex=""),
        replace(person, birth_date=born.replace(year=born.year - 1), given_name="", phone=""),
        replace(person, birth_date=born.replace(day=28 if born.day != 28 else 27), street_address="9 Other Road"),
        replace(person, surname=""),
    ]
    out = [{**synthetic.values(person), "city": "Tampa", "name_suffix": "JR"}]
    for n, copy in enumerate(copies):
        out.append({**synthetic.values(copy), "city": ("Tampa", "Orlando", "")[n % 3],
                    "name_suffix": ("JR", "SR", "")[n % 3]})
    return out


def test_scorer_equals_score_on_every_level_of_generated_pairs():
    parameters = default_parameters()
    rng = random.Random(3)
    pairs = []
    for person in synthetic.people(150, seed=9):
        copies = [tokens_for(values) for values in _variants(person, rng)]
        pairs += [(copies[0], c) for c in copies[1:]] + [(c, copies[0]) for c in copies[1:]]
    records = [right for _, right in pairs]
    pairs += [(rng.choice(records), rng.choice(records)) for _ in range(500)]  # mostly strangers
    reached: set[tuple[str, int]] = set()
    for left, right in pairs:
        for a, b in ((left, right), (keyed_tokens(left, SECRET), keyed_tokens(right, SECRET))):
            expected, got = score(a, b, parameters), Scorer(a, parameters)(b)
            assert got.weight == expected.weight and dict(got.gammas) == dict(expected.gammas)
            reached |= set(expected.gammas.items())
    # Not a vacuous equality: every level of every comparison occurred.
    levels = {(c.name, g) for c in COMPARISONS for g in range(-1, len(c.levels) + 1)}
    assert levels <= reached, sorted(levels - reached)


def test_one_scorer_serves_many_candidates():
    parameters = Parameters(-7.5, {c.name: {g: 0.1 * g + 0.013 for g in range(0, 7)} for c in COMPARISONS})
    records = _tokens(120, seed=4)
    scorer = Scorer(records[0], parameters)
    for right in records:
        assert scorer(right) == score(records[0], right, parameters)


names = st.sampled_from(["given", "given_canon", "middle", "sn", "sn1", "given_sdx", "given_del", "sn_del",
                         "dob", "dob_swap", "sex", "phone", "street"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(names, st.text(alphabet="AB C", max_size=6), max_size=8), max_size=12))
def test_token_keyer_equals_keyed_tokens_also_after_its_memo_empties(records):
    keyer = TokenKeyer(SECRET, memo=3)  # a tiny memo: it fills and empties within one example
    for tokens in records + records:
        assert keyer(tokens) == keyed_tokens(tokens, SECRET)
        for name, value in tokens.items():  # a family's token alone, as the person index's blocks use it
            assert keyer.token(name, value) == keyed_token(SECRET, name, value)


def test_token_keyer_equals_keyed_tokens_on_generated_records():
    keyer = TokenKeyer(SECRET)
    for tokens in _tokens(300, seed=2):
        assert keyer(tokens) == keyed_tokens(tokens, SECRET)
    assert TokenKeyer(b"j" * 32)(tokens) != keyer(tokens)
