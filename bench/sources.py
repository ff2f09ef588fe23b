"""Records per second per source adapter on generated data, each against a raw-parse baseline.

Run: ``.venv/bin/python -m bench.sources [--rows 100000] [--hl7 5000] [--batch 5000]``. Everything is generated
into a temporary directory (fictional people); nothing is read from ``../shared``.

For each adapter: plan + read every window (what a run does, minus identity, mapping and delivery), records
per second, and the same data read by the cheapest raw parse (ratio = adapter time / raw time: the cost of
validation, normalisation and the typed records):

- rms-sql (SQLite file, ``--rows`` rows): raw = ``SELECT *`` fetch of every row;
- jail-csv (``--rows`` booking rows, no charges file): raw = ``csv.reader`` over the file;
- fhir-ndjson (``--rows`` resources: patients with 4 Conditions and 5 Encounters each): raw = ``json.loads``
  of every line;
- fhir-bundle (the same resources as one Bundle per patient): raw = ``json.loads`` of every file;
- nibrs-flat (``--rows`` level-7 arrest lines): raw = slicing the fixed-width fields;
- hl7v2 (``--hl7`` ADT messages; hl7apy parses each message, which dominates): raw = splitting segments/fields.
"""
from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

TODAY = date(2026, 11, 24)
T0 = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))


def _drain(source, batch: int) -> tuple[int, int]:  # noqa: ANN001
    records = rejected = 0
    for window in source.plan(None, batch):
        for item in source.read(window):
            if type(item).__name__ == "Rejected":
                rejected += 1
            else:
                records += 1
    return records, rejected


def _timed(work: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def _report(name: str, units: int, ours: float, raw: float, result: tuple[int, int]) -> None:
    records, rejected = result
    print(f"{name:12} {units:>7} in  {records:>7} rec {rejected:>5} rej  {units / ours:>9.0f} /s   "
          f"raw {units / raw:>10.0f} /s   ratio {ours / raw:6.1f}x")


def bench_rms(work: Path, rows: int, batch: int) -> None:
    """RMS view in SQLite vs a plain SELECT."""
    import sqlalchemy as sa

    from adapters.sources.rms_sql import RmsSqlSource

    engine = sa.create_engine(f"sqlite:///{work / 'rms.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE calls (incident_number TEXT PRIMARY KEY, first_name TEXT, last_name TEXT,"
                             " dob TEXT, sex TEXT, contact_at TEXT, agency TEXT, initiated_by TEXT, reason TEXT,"
                             " disposition TEXT, updated_at TEXT)")
        conn.exec_driver_sql("CREATE INDEX calls_cursor ON calls (updated_at, incident_number)")
        conn.exec_driver_sql("INSERT INTO calls VALUES (?,?,?,?,?,?,?,?,?,?,?)", [
            (f"I{n:08d}", "Ana", f"Doe{n % 997}", "1990-02-03", "F", (T0 + timedelta(minutes=n)).isoformat(), "PD",
             "911", "welfare check", "ER", (T0 + timedelta(seconds=n // 3)).isoformat()) for n in range(rows)])
    raw, _ = _timed(lambda: engine.connect().exec_driver_sql("SELECT * FROM calls").fetchall())
    source = RmsSqlSource(engine, table_name="calls", record_kind="crisis_contact", today=TODAY)
    ours, result = _timed(lambda: _drain(source, batch))
    _report("rms-sql", rows, ours, raw, result)


def bench_jail(work: Path, rows: int, batch: int) -> None:
    """Jail CSV drop vs csv.reader."""
    from adapters.sources.jail_csv import JailCsvSource

    drop = work / "jail"
    drop.mkdir()
    with (drop / "bookings.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["booking_number", "first_name", "last_name", "dob", "sex", "jail_entry_date", "facility",
                      "booking_agency", "arresting_agency", "updated_date"])
        for n in range(rows):
            stamp = (T0 + timedelta(minutes=n)).isoformat()
            out.writerow([f"B{n:08d}", "Ana", f"Doe{n % 997}", "1990-02-03", "F", stamp, "Main", "SO", "PD", stamp])
    raw, _ = _timed(lambda: sum(1 for _ in csv.reader((drop / "bookings.csv").open(newline=""))))
    source = JailCsvSource(drop, today=TODAY, require_charges=False)
    ours, result = _timed(lambda: _drain(source, batch))
    _report("jail-csv", rows, ours, raw, result)


def _fhir_resources(resources: int) -> list[list[dict]]:
    """Per patient: Patient + 4 Conditions (one a behavioral F code) + 5 Encounters."""
    patients = []
    for p in range(resources // 10):
        pid = f"p{p:07d}"
        group = [{"resourceType": "Patient", "id": pid, "name": [{"family": f"Doe{p % 997}", "given": ["Ana"]}],
                  "birthDate": "1990-02-03", "gender": "female", "meta": {"lastUpdated": "2026-01-01T00:00:00Z"}}]
        for c in range(4):
            code = ("http://hl7.org/fhir/sid/icd-10-cm", "F32.9") if c == 0 else ("http://snomed.info/sct", "44054006")
            group.append({"resourceType": "Condition", "id": f"{pid}c{c}", "subject": {"reference": f"Patient/{pid}"},
                          "code": {"coding": [{"system": code[0], "code": code[1]}]}, "recordedDate": "2025-01-02",
                          "meta": {"security": [{"code": "PSY"}]} if c == 0 else {}})
        for e in range(5):
            group.append({"resourceType": "Encounter", "id": f"{pid}e{e}", "subject": {"reference": f"Patient/{pid}"},
                          "period": {"start": f"2025-0{e + 1}-01T09:00:00Z"}})
        patients.append(group)
    return patients


def bench_fhir(work: Path, resources: int, batch: int) -> None:
    """FHIR NDJSON export and bundles vs json.loads."""
    from adapters.sources.fhir import FhirBundleSource, FhirNdjsonSource

    patients = _fhir_resources(resources)
    export = work / "ndjson"
    export.mkdir()
    for kind in ("Patient", "Condition", "Encounter"):
        with (export / f"{kind}.ndjson").open("w") as handle:
            for group in patients:
                for r in group:
                    if r["resourceType"] == kind:
                        handle.write(json.dumps(r) + "\n")

    def raw_ndjson() -> int:
        """Parse every line of every file."""
        return sum(1 for f in export.glob("*.ndjson") for line in f.open() if json.loads(line))

    raw, _ = _timed(raw_ndjson)
    ours, result = _timed(lambda: _drain(FhirNdjsonSource(export, today=TODAY), batch // 10 or 1))
    _report("fhir-ndjson", resources, ours, raw, result)

    bundles = work / "bundles"
    bundles.mkdir()
    for group in patients:
        entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in group]
        (bundles / f"{group[0]['id']}.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                                                    "entry": entries}))
    raw, _ = _timed(lambda: [json.loads(f.read_bytes()) for f in bundles.glob("*.json")])
    ours, result = _timed(lambda: _drain(FhirBundleSource(bundles, today=TODAY), batch))
    _report("fhir-bundle", resources, ours, raw, result)


def bench_nibrs(work: Path, rows: int, batch: int) -> None:
    """NIBRS flat file vs slicing the fields."""
    from adapters.sources.nibrs import NibrsFlatFileSource

    drop = work / "nibrs"
    drop.mkdir()
    line = "00667A042020    VT0040100{:<12}0120140410T90J01    32  MWNR "
    (drop / "agency.txt").write_text("".join(line.format(n) + "\r\n" for n in range(rows)))
    raw, _ = _timed(lambda: [(x[16:25], x[25:37], x[39:47], x[48:51]) for x in
                             (drop / "agency.txt").read_text().splitlines()])
    ours, result = _timed(lambda: _drain(NibrsFlatFileSource(drop), batch))
    _report("nibrs-flat", rows, ours, raw, result)


def bench_hl7(work: Path, messages: int, batch: int) -> None:
    """HL7 v2 ADT file vs splitting segments and fields."""
    from adapters.sources.hl7v2 import Hl7v2FileSource

    drop = work / "hl7"
    drop.mkdir()
    text = "\n".join(
        f"MSH|^~\\&|EHR|CLINIC|NIEM|COUNTY|20261101093000-0500||ADT^A08^ADT_A01|{n}|P|2.5.1\n"
        f"EVN|A08|20261101093000-0500\n"
        f"PID|1||MRN{n}^^^CLINIC^MR||DOE{n % 997}^ANA||19900203|F\n"
        f"DG1|1||F32.9^Depression^I10" for n in range(messages))
    (drop / "feed.hl7").write_text(text + "\n")
    raw, _ = _timed(lambda: [[s.split("|") for s in m.split("\n")] for m in text.split("\nMSH")])
    ours, result = _timed(lambda: _drain(Hl7v2FileSource(drop, today=TODAY), batch))
    _report("hl7v2", messages, ours, raw, result)


def main() -> None:
    """Generate the data, run each adapter, print records per second and the ratio to the raw parse."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows / resources per adapter")
    parser.add_argument("--hl7", type=int, default=5_000, help="HL7 v2 messages (hl7apy is slow)")
    parser.add_argument("--batch", type=int, default=5_000, help="records per window")
    args = parser.parse_args()
    print(f"{'adapter':12} {'input':>7}     {'records':>7}     {'rej':>5}  {'ours':>11}       {'raw parse':>14}")
    with tempfile.TemporaryDirectory(prefix="niem-bench-sources-") as tmp:
        work = Path(tmp)
        bench_rms(work, args.rows, args.batch)
        bench_jail(work, args.rows, args.batch)
        bench_fhir(work, args.rows, args.batch)
        bench_nibrs(work, args.rows, args.batch)
        bench_hl7(work, args.hl7, args.batch)


if __name__ == "__main__":
    main()
