"""HL7 v2 ADT file source: the FHIR-Converter samples (read in place), separators, batches, merges, bad input."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.sources.hl7v2 import Hl7v2FileSource
from transforms.model import ClinicalRecord, Rejected

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hl7v2-adt-fhir-converter"
TODAY = date(2026, 11, 24)
CANARY = "ZQXCANARY"


def _all(source: Hl7v2FileSource, cursor: str | None = None, batch: int = 500) -> list:
    return [item for w in source.plan(cursor, batch) for item in source.read(w)]


def _adt(event: str, control: str, pid5: str = "DOE^JANE^Q", pid7: str = "19800102", extra: str = "") -> str:
    return "\r".join([
        f"MSH|^~\\&|EHR|CLINIC|NIEM|COUNTY|20261101093000-0500||ADT^{event}^ADT_A01|{control}|P|2.5.1",
        f"EVN|{event}|20261101093000-0500",
        f"PID|1||MRN{control}^^^CLINIC^MR~123-45-6789^^^USSSA^SS||{pid5}||{pid7}|F|||1 Main St^^Town^ST^55555",
        "PV1|1|I|" + "|" * 41 + "20261101080000-0500",
    ] + ([extra] if extra else []))


@pytest.mark.shared
def test_converter_samples_give_records_for_the_events_read_and_name_the_others() -> None:
    if not SAMPLES.exists():
        pytest.skip("../shared/data/hl7v2-adt-fhir-converter is absent")
    items = _all(Hl7v2FileSource(SAMPLES, today=TODAY))
    assert len(items) == 26  # one per file: nothing dropped
    records = {i.ref.locator.split("#")[0]: i for i in items if isinstance(i, ClinicalRecord)}
    assert sorted(records) == [f"ADT-{e}-01.hl7" for e in ("A01", "A03", "A04", "A08", "A28", "A31", "A40")]
    admit = records["ADT-A01-01.hl7"]
    assert (admit.patient_id, admit.person.surname, admit.person.given_name, admit.person.name_suffix) == (
        "PATID1234", "EVERYMAN", "ADAM", "III")
    assert admit.person.ssn == "123456789" and admit.person.birth_date == date(1988, 8, 18)
    assert admit.updated_at == datetime(2029, 8, 1, 7, 6, 24, tzinfo=timezone(timedelta(hours=1, minutes=15)))
    merge = records["ADT-A40-01.hl7"]
    assert (merge.patient_id, merge.replaces_patient_ids) == ("12345", ("56789",))
    others = Counter(i.error.field for i in items if isinstance(i, Rejected))
    assert others == {"MSH-9": 19}


def test_cr_lf_and_crlf_separators_and_batches_all_read(tmp_path: Path) -> None:
    one, two, three = _adt("A01", "1"), _adt("A08", "2"), _adt("A03", "3")
    (tmp_path / "a.hl7").write_text(one.replace("\r", "\n") + "\n")
    (tmp_path / "b.hl7").write_text(two.replace("\r", "\r\n"))
    (tmp_path / "c.hl7").write_text("FHS|^~\\&\rBHS|^~\\&\r" + three + "\r" + _adt("A04", "4") + "\rBTS|2\rFTS|1\r")
    (tmp_path / "d.hl7").write_bytes(b"\x0b" + _adt("A01", "5").encode() + b"\x1c\r")  # MLLP framing kept
    items = _all(Hl7v2FileSource(tmp_path, today=TODAY))
    assert [i.patient_id for i in items] == ["MRN1", "MRN2", "MRN3", "MRN4", "MRN5"]
    assert items[0].last_encounter_at == datetime(2026, 11, 1, 8, tzinfo=timezone(timedelta(hours=-5)))


def test_behavioral_diagnoses_are_kept_others_not(tmp_path: Path) -> None:
    dg1 = "DG1|1||F20.9^Schizophrenia^I10|||A\rDG1|2||J45.909^Asthma^I10|||A\rDG1|3||47505003^PTSD^SCT"
    (tmp_path / "a.hl7").write_text(_adt("A08", "1", extra=dg1))
    (record,) = _all(Hl7v2FileSource(tmp_path, today=TODAY))
    assert [c.coding.code for c in record.conditions] == ["F20.9", "47505003"]


def test_bad_messages_are_rejected_by_field_and_the_batch_goes_on(tmp_path: Path) -> None:
    messages = [
        _adt("A01", "1"),
        _adt("A01", "2", pid7=f"1980{CANARY}"),                    # bad date
        _adt("A01", "3", pid5=f"DO\x07E{CANARY}^JANE"),            # XML-illegal control character
        _adt("A01", "4", pid5=("X" * 5000) + CANARY + "^JANE"),    # huge field
        "\r".join(s for s in _adt("A01", "5").split("\r") if not s.startswith("PID")),  # no PID segment
        "MSH|^~\\&|EHR|X|Y|Z|2026|" + CANARY + "|ADT^A01|8|P|2.5.1\rQQQ|1",         # an unknown segment
        _adt("A01", "6", pid5="^JANE"),                            # missing family name
    ]
    (tmp_path / "batch.hl7").write_text("\r".join(messages))
    (tmp_path / "latin1.hl7").write_bytes(_adt("A01", "7", pid5="M\xdcLLER^JO").encode("latin-1"))
    items = _all(Hl7v2FileSource(tmp_path, today=TODAY))
    assert len(items) == 8
    assert [i.patient_id for i in items if isinstance(i, ClinicalRecord)] == ["MRN1"]
    fields = [(i.error.record.split(":", 1)[1], i.error.field) for i in items if isinstance(i, Rejected)]
    assert fields == [("batch.hl7#message=2", "PID-7"), ("batch.hl7#message=3", "PID-5"),
                      ("batch.hl7#message=4", "PID-5"), ("batch.hl7#message=5", "PID"),
                      ("batch.hl7#message=6", "(message)"), ("batch.hl7#message=7", "PID-5"),
                      ("latin1.hl7#message=1", "PID-5")]
    assert all(CANARY not in str(i.error) for i in items if isinstance(i, Rejected))


def test_cursor_reads_new_files_only_and_windows_split_big_batches(tmp_path: Path) -> None:
    (tmp_path / "1.hl7").write_text("\r".join(_adt("A01", str(n)) for n in range(5)))
    source = Hl7v2FileSource(tmp_path, today=TODAY)
    windows = source.plan(None, 2)
    assert [w.spec["start"] for w in windows] == [1, 3, 5]
    cursor = windows[-1].cursor_after
    (tmp_path / "2.hl7").write_text(_adt("A04", "9"))
    (tmp_path / "3.hl7.part").write_text("MSH|")  # still being written
    assert [i.patient_id for i in _all(source, cursor)] == ["MRN9"]
