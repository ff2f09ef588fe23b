"""NIBRS flat-file and IEPD XML sources on SEARCH's samples (read in place) and on broken input."""
from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from adapters.sources.nibrs import NibrsFlatFileSource, NibrsXmlSource
from transforms.model import Arrest, Rejected

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nibrs-search-ncjis"
CANARY = "ZQXCANARY"


def _all(source, cursor=None, batch=500) -> list:
    return [item for w in source.plan(cursor, batch) for item in source.read(w)]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


@pytest.mark.shared
def test_vermont_flat_file_arrestees_become_arrests_and_deletes_are_counted() -> None:
    flat = _need(DATA / "flatfile")
    items = _all(NibrsFlatFileSource(flat), batch=1000)
    lines = (flat / "VTUCR0001_20200420_NIBRS_010.txt").read_bytes().decode("ascii").splitlines()
    arrestee_lines = [line for line in lines if line[4:5] in ("6", "7")]
    assert len(arrestee_lines) == 437 + 428  # the README's level 6 and level 7 counts
    deletes = sum(line[5] == "D" for line in arrestee_lines)
    assert len(items) == 865
    assert Counter(type(i).__name__ for i in items) == {"Arrest": 865 - deletes, "Rejected": deletes}
    assert {i.error.field for i in items if isinstance(i, Rejected)} == {"segment_action_type"}
    first = next(i for i in items if isinstance(i, Arrest) and i.incident_number)
    assert first.agency.startswith("VT00401") and first.person.given_name == "" and first.person.birth_date is None
    assert first.charges[0].statute in {"26F", "90J"} and first.arrested_at.date() < date(2020, 5, 1)


@pytest.mark.shared
def test_iepd_xml_samples_give_two_arrests_a_delete_and_a_refused_file() -> None:
    items = _all(NibrsXmlSource(_need(DATA / "xml/iepd-2019.1-samples")))
    arrests = [i for i in items if isinstance(i, Arrest)]
    assert sorted((a.ref.locator.split("#")[0], a.charges[0].statute, a.agency) for a in arrests) == [
        ("nibrs_AllFields_Sample.xml", "64A", "WVNDX0100"), ("nibrs_GroupBArrest_Sample.xml", "90Z", "WVNDX0100")]
    all_fields = next(a for a in arrests if a.charges[0].statute == "64A")
    assert (all_fields.arrest_number, all_fields.arrested_at.date(), all_fields.person.sex) == (
        "12345-1", date(2016, 2, 28), "F")
    refused = {i.error.record.split(":", 1)[1].split("#")[0]: i.error.field for i in items if isinstance(i, Rejected)}
    # the published GroupAReplace sample is not well-formed (a comment before the XML declaration)
    assert refused == {"nibrs_GroupAReplace_Sample.xml": "(xml)",
                       "nibrs_GroupBArrestDelete_Sample.xml": "ReportHeader/ReportActionCategoryCode"}


GOOD7 = "00667A042020    VT0040100237398      0120140410T90J01    32  MWNR "


def test_bad_flat_lines_are_rejected_by_field_and_the_rest_read(tmp_path: Path) -> None:
    lines = [
        GOOD7,
        GOOD7[:39] + "2014133" + CANARY[0] + GOOD7[47:],          # bad date
        GOOD7[:48] + "ZZZ" + GOOD7[51:],                            # unknown offense code
        GOOD7[:30],                                                 # short (truncated) line
        "0066,7,A,042020,VT0040100,237398,01,20140410,T,90J,01,32,M,W,N,R",  # exported as CSV, not fixed width
        GOOD7[:26] + "2373,8" + GOOD7[32:],                         # a stray delimiter inside an identifier
        GOOD7[:17] + "\x01" + GOOD7[18:],                           # control character
    ]
    data = "\r\n".join(lines).encode("ascii") + b"\r\n" + GOOD7[:20].encode() + b"\xe9" + GOOD7[21:].encode()
    (tmp_path / "agency.txt").write_bytes(data)
    items = _all(NibrsFlatFileSource(tmp_path))
    assert len(items) == 8 and isinstance(items[0], Arrest)
    fields = [i.error.field for i in items[1:]]
    assert fields == ["arrest_date", "ucr_arrest_offense_code", "segment", "segment_level",
                      "arrest_transaction_number", "segment", "segment"]
    assert all(CANARY not in str(i.error) for i in items[1:])


def test_hostile_xml_is_refused_without_reading_it(tmp_path: Path) -> None:
    (tmp_path / "xxe.xml").write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                                      "<Submission>&e;</Submission>")
    (tmp_path / "other.xml").write_text("<Invoice/>")
    items = _all(NibrsXmlSource(tmp_path))
    assert [(i.error.record.split(":", 1)[1], i.error.field) for i in items] == [("other.xml", "(root)"),
                                                                                 ("xxe.xml", "(xml)")]


def test_flat_file_cursor_skips_files_done(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(GOOD7 + "\n")
    source = NibrsFlatFileSource(tmp_path)
    cursor = source.plan(None, 10)[-1].cursor_after
    (tmp_path / "b.txt").write_text(GOOD7.replace("237398", "999999") + "\n")
    assert [i.arrest_number for i in _all(source, cursor)] == ["999999-01"]
