"""Row mappings of the RMS, HL7 v2 and NIBRS sources: normalisation, and errors that never quote a value."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.model import RecordError, SourceRef
from transforms.model import values as v
from transforms.model.hl7v2 import Encoding, record_from_adt, unescape
from transforms.model.nibrs import arrest_from_flat_line
from transforms.model.rms import arrest_from_row, crisis_contact_from_row

TODAY = date(2026, 11, 24)
REF = SourceRef("rms", "calls#id=1", "1")
CANARY = "ZQXCANARY"


def _call(**over: object) -> dict:
    row = {"incident_number": " c-1 ", "first_name": "ana", "last_name": "rivera", "dob": date(1990, 2, 3),
           "contact_at": datetime(2026, 11, 1, 9, 30), "initiated_by": "Family", "reason": "  welfare   check ",
           "disposition": "no_action", "co_responder": 1, "updated_at": "2026-11-01T10:00:00-05:00"}
    row.update(over)
    return row


def test_crisis_row_is_normalised_and_naive_driver_times_take_the_configured_zone() -> None:
    zone = ZoneInfo("America/Chicago")
    record = crisis_contact_from_row(_call(), REF, today=TODAY, default_tz=zone)
    assert (record.incident_number, record.person.given_name, record.reason) == ("C-1", "ANA", "welfare check")
    assert (record.initiated_by, record.disposition, record.co_responder) == ("THIRD_PARTY", "LEFT_ON_SCENE", True)
    assert record.contact_at == datetime(2026, 11, 1, 9, 30, tzinfo=zone)
    with pytest.raises(RecordError) as caught:
        crisis_contact_from_row(_call(), REF, today=TODAY)  # no zone configured: a naive time is refused
    assert caught.value.field == "contact_at"


def test_county_codes_extend_the_defaults() -> None:
    record = crisis_contact_from_row(_call(disposition="TRANS-MHU"), REF, today=TODAY, default_tz=timezone.utc,
                                     codes={"disposition": {"trans-mhu": "CRISIS_CENTER"}})
    assert record.disposition == "CRISIS_CENTER"


@given(st.text(min_size=1, max_size=40).map(lambda s: CANARY + s))
def test_no_rms_error_ever_quotes_the_value(value: str) -> None:
    for field in ("dob", "contact_at", "initiated_by", "disposition", "co_responder", "sex", "ssn"):
        try:
            crisis_contact_from_row(_call(**{field: value}), REF, today=TODAY, default_tz=timezone.utc)
        except RecordError as error:
            assert error.field == field and CANARY not in str(error)


def test_arrest_row_with_one_charge() -> None:
    arrest = arrest_from_row({"arrest_number": "a1", "first_name": "Bo", "last_name": "Roe",
                              "arrested_at": "2026-11-01T10:00:00Z", "statute": "13b", "severity": "misdemeanor",
                              "updated_at": "2026-11-01T10:00:00Z"}, REF, today=TODAY)
    assert arrest.charges[0].statute == "13B" and not arrest.charges[0].felony and arrest.person.birth_date is None


def test_values_refuse_xml_illegal_and_undecodable_text() -> None:
    for bad in ("a\x00b", "a\x1fb", "a\udce9b", b"\xff\xfe"):
        with pytest.raises(v.FieldProblem):
            v.text(bad)
    assert v.a_datetime("2026-11-01") == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert v.a_datetime("2026-11-01T10:00-05") == datetime(2026, 11, 1, 10, tzinfo=timezone(timedelta(hours=-5)))


def test_hl7_unescape_and_a_message_from_segments() -> None:
    enc = Encoding()
    assert unescape(r"A\F\B\S\C\T\D\R\E\E\F", enc) == "A|B^C&D~E\\F"
    assert unescape(r"x\X0D\y\.br\z", enc) == "xyz"  # hex and formatting escapes are not data
    segments = [s.split("|") for s in (
        "MSH|^~\\&|A|B|C|D|20261101093000-0500||ADT^A08|9|P|2.5.1",
        "EVN|A08|20261101093000-0500",
        "PID|1||M1^^^X^MR||O\\S\\BRIEN^PAT||19800102|X",
    )]
    segments[0].insert(1, "|")
    record = record_from_adt(segments, enc, REF, today=TODAY)
    assert (record.patient_id, record.person.surname, record.person.sex) == ("M1", "O^BRIEN", "X")


def test_nibrs_group_a_arrestee_line() -> None:
    line = "01106I042020    VT004010014BU006687  01252496      20140319SM26F01    30  FWNR                     "
    arrest = arrest_from_flat_line(line, REF)
    assert (arrest.arrest_number, arrest.incident_number, arrest.agency) == ("252496-01", "14BU006687", "VT0040100")
    assert (arrest.charges[0].statute, arrest.person.sex, arrest.person.race) == ("26F", "F", "W")
    assert arrest.arrested_at.date() == date(2014, 3, 19)
