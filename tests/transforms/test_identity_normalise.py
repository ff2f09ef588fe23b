"""Normalisation, comparison levels and keyed tokens of the probabilistic tier (pure functions)."""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.identity_comparisons import Parameters, gammas, hard_conflict, score
from transforms.identity_nicknames import canonical_given_name
from transforms.identity_normalise import (
    TOKENS,
    date_tokens,
    phone_token,
    soundex,
    ssn_token,
    street_tokens,
    tokens_for,
)
from transforms.identity_tokens import bloom_encode, dice, keyed_tokens

SECRET = b"a" * 32


@pytest.mark.parametrize(("name", "code"), [
    ("ROBERT", "R163"), ("RUPERT", "R163"), ("ASHCRAFT", "A261"), ("TYMCZAK", "T522"), ("PFISTER", "P236"),
    ("LEE", "L000"), ("", ""),
])
def test_soundex_follows_the_standard_rules(name, code):
    assert soundex(name) == code


def test_nicknames_fold_to_the_formal_name():
    assert canonical_given_name("BOB") == canonical_given_name("ROBBIE") == "ROBERT"
    assert canonical_given_name("PEGGY") == "MARGARET" and canonical_given_name("ZEBULON") == "ZEBULON"


def test_birth_date_tokens_give_transposition_and_partial_dates():
    tokens = date_tokens(date(1979, 4, 11))
    assert tokens["dob"] == "19790411" and tokens["dob_swap"] == "19791104"
    assert date_tokens("1979-11-04")["dob"] == tokens["dob_swap"]
    assert date_tokens(date(1979, 4, 13))["dob_swap"] == ""  # no month 13: no plausible swap
    assert date_tokens("1990-02-XX") == {"dob": "", "dob_swap": "", "dob_ym": "199002", "dob_yd": "",
                                         "dob_md": "", "dob_y": "1990"}
    assert date_tokens("19230413")["dob"] == "19230413" and date_tokens("")["dob_y"] == ""
    assert date_tokens("1987-10-02T10:08:59-05")["dob"] == "19871002"


def test_address_phone_and_ssn_normalise():
    assert street_tokens("12 North Main Street, Apt 4") == ("12 N MAIN ST", "MAIN ST")
    assert street_tokens("12 N. Main St.")[0] == "12 N MAIN ST"
    assert phone_token("+1 (407) 555-0142") == phone_token("407.555.0142") == "4075550142"
    assert phone_token("999-999-9999") == "" and phone_token("12") == ""
    assert ssn_token("229-95-5642") == "229955642"
    assert ssn_token("999-99-9999") == ssn_token("000-12-3456") == ssn_token("123-45-0000") == ""


def test_name_parts_suffix_and_married_surnames():
    t = tokens_for({"given_name": "José Luis", "surname": "García-López Jr.", "middle_name": ""})
    assert (t["given"], t["middle"], t["sn"], t["sn1"], t["sn2"], t["suffix"]) == (
        "JOSE", "LUIS", "GARCIALOPEZ", "GARCIA", "LOPEZ", "JR")
    assert tokens_for({"surname": "de la Cruz"})["sn2"] == "CRUZ"


def test_tokens_of_a_record_do_not_depend_on_the_records_before_it():
    # Field tokens are remembered per value: a given name seen before as a surname, or a surname with and
    # without a suffix, must still give this record's own tokens, in TOKENS order (the order they are stored in).
    records = [
        {"given_name": "Mary Ann", "surname": "Smith Jr", "birth_date": "1990-02", "ssn": "1234567"},
        {"given_name": "Smith", "surname": "Mary", "middle_name": "Ann", "birth_date": date(1990, 2, 3)},
        {"given_name": "Mary", "surname": "Smith", "name_suffix": "Sr.", "sex": "female", "city": "St. Petersburg"},
        {"given_name": "Mary Jr", "surname": "Smith", "birth_date": "19900203", "ssn": "229-95-5642"},
        {"given_name": "", "surname": "", "birth_date": None, "ssn": "999-99-9999", "phone": "+1 (407) 555-0142"},
    ]
    first = [tokens_for(r) for r in records]
    again = [tokens_for(r) for r in reversed(records)][::-1]
    assert first == again and all(tuple(t) == TOKENS for t in first)
    assert (first[0]["given"], first[0]["middle"], first[0]["suffix"], first[0]["dob_ym"]) == ("MARY", "ANN", "JR", "199002")
    assert (first[1]["given"], first[1]["middle"], first[1]["sn"], first[1]["suffix"]) == ("SMITH", "ANN", "MARY", "")
    assert (first[2]["suffix"], first[2]["sex"], first[2]["city"], first[2]["middle"]) == ("SR", "F", "ST PETERSBURG", "")
    assert (first[3]["given"], first[3]["suffix"], first[3]["dob"], first[3]["ssn"]) == ("MARY", "JR", "19900203", "229955642")
    assert first[4]["given_canon"] == first[4]["given_del"] == first[4]["ssn"] == "" and first[4]["phone"] == "4075550142"


def _levels(a: dict, b: dict) -> dict[str, int]:
    return gammas(tokens_for(a), tokens_for(b))


def test_levels_catch_the_common_errors():
    base = {"given_name": "Margaret", "surname": "Okafor", "birth_date": date(1980, 3, 9)}
    assert _levels(base, {**base, "given_name": "Peggy"})["given_name"] == 5  # nickname
    assert _levels(base, {**base, "given_name": "Margeret"})["given_name"] == 3  # sounds alike
    assert _levels(base, {**base, "given_name": "Magraret"})["given_name"] == 2  # one edit apart
    assert _levels(base, {**base, "birth_date": date(1980, 9, 3)})["birth_date"] == 3  # transposed
    assert _levels(base, {**base, "birth_date": date(1980, 3, 8)})["birth_date"] == 2  # one part off
    assert _levels(base, {**base, "surname": "Okafor-Reed"})["surname"] == 4  # shares a part
    assert _levels(base, {**base, "surname": ""})["surname"] == -1  # unknown is neutral


def test_hard_conflicts_name_twins_and_parent_child():
    twins = _levels({"given_name": "Grace", "surname": "Okafor", "birth_date": "1999-07-01"},
                    {"given_name": "Hope", "surname": "Okafor", "birth_date": "1999-07-01"})
    assert hard_conflict(twins) == "same birth date, different given names"
    father_son = _levels({"given_name": "James", "surname": "Carter", "birth_date": "1961-02-14"},
                         {"given_name": "James", "surname": "Carter", "birth_date": "1988-10-30"})
    assert hard_conflict(father_son) == "same given name, different birth dates"
    typo = _levels({"given_name": "Georgia", "birth_date": "1923-04-13"},
                   {"given_name": "Geogia", "birth_date": "1923-04-13"})
    assert hard_conflict(typo) == ""


def test_score_sums_weights_and_ignores_unknowns():
    params = Parameters(-10.0, {name: {g: float(g) for g in range(0, 8)} for name in (
        "given_name", "surname", "birth_date", "sex", "suffix", "street", "postcode", "city", "phone", "ssn")})
    a = tokens_for({"given_name": "Ann", "surname": "Lee", "birth_date": "1970-01-01"})
    result = score(a, a, params)
    assert result.weight == -10.0 + 6 + 5 + 4  # exact levels, everything else unknown (0 weight)
    assert result.agreement()["sex"] == "unknown" and result.agreement()["given_name"] == "exact"


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_keyed_tokens_keep_equality_and_hide_values(first, second):
    a = tokens_for({"given_name": first, "surname": second})
    b = tokens_for({"given_name": first, "surname": second})
    ka, kb = keyed_tokens(a, SECRET), keyed_tokens(b, SECRET)
    assert gammas(ka, kb) == gammas(a, b)
    for name, value in a.items():
        if value and len(value) > 3:
            assert value not in " ".join(ka.values())
    assert keyed_tokens(a, b"b" * 32)["sn"] != ka["sn"] or not a["sn"]


def test_keyed_tokens_agree_like_clear_tokens_across_records():
    pairs = [({"given_name": "Bob", "surname": "Smith", "birth_date": "1980-01-02"},
              {"given_name": "Robert", "surname": "Smyth", "birth_date": "1980-02-01"}),
             ({"given_name": "Georgia", "surname": "Lee"}, {"given_name": "Geogia", "surname": "Lee"}),
             ({"given_name": "Ann", "surname": "Garcia-Lopez"}, {"given_name": "Lopez", "surname": "Ann"})]
    for left, right in pairs:
        clear = gammas(tokens_for(left), tokens_for(right))
        assert gammas(keyed_tokens(tokens_for(left), SECRET), keyed_tokens(tokens_for(right), SECRET)) == clear


def test_bloom_filters_score_typos_close_and_strangers_far():
    smith, smyth, jones = (bloom_encode(v, SECRET) for v in ("SMITH", "SMYTH", "JONES"))
    assert dice(smith, smith) == 1.0 and dice(smith, smyth) > 0.5 > dice(smith, jones)
    assert bloom_encode("SMITH", b"c" * 32) != smith
    with pytest.raises(ValueError):
        keyed_tokens({"sn": "X"}, b"short")
