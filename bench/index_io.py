"""What grows when the person index grows: WAL bytes and syncs per commit, B-tree sizes, candidates per search.

Run: ``.venv/bin/python -m bench.index_io [--sizes 2000,20000,50000] [--batch 100] [--checkpoint 1000]
[--page-size 4096]``

Links the demo JMS drop of each size (``bench.identity._bookings``) into a fresh SQLite file with
``PersonIndex.link_many``, ``--batch`` records a transaction, exactly as ``bench.identity --index`` does, and
reports for the last tenth of the records (the commits made when the index is nearly full size):

- wall and CPU microseconds per record;
- WAL frames written per commit, read from the WAL file: with ``--checkpoint 0`` the WAL is never reset,
  so its growth over a commit is exactly the pages that commit wrote, and the frames' page numbers say
  which B-tree each page belongs to (otherwise the growth between checkpoints, a lower bound); each frame
  is a page plus a 24-byte header;
- bytes handed to ``write``/``pwrite`` per commit (``wchar`` of ``/proc/self/io``: WAL frames plus what
  checkpoints copy into the database file) and bytes that reached the block layer (``write_bytes``);
- syncs are not counted here (SQLite calls them in C): run the script under
  ``strace -f -c -e trace=fsync,fdatasync`` for their number;
- candidates scored per probabilistic search (a counting wrapper around the Scorer);
- at the end, the pages and bytes of every person-index table and index (``dbstat``).

The outcome digest is ``bench.identity``'s: it must stay the same when only storage changes.
"""
from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from bench.identity import _bookings, _outcome_digest

NOW = datetime(2026, 11, 2, 6, tzinfo=timezone.utc)
TABLES = ("persons", "crosswalk", "person_keys", "person_record_tokens", "person_blocks", "person_reviews")


def _io() -> tuple[int, int]:
    """(wchar, write_bytes) of this process so far."""
    values = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(values["wchar"]), int(values["write_bytes"])


def _sizes(path: Path) -> list[tuple[str, str, int, int]]:
    """(table, btree name, pages, payload bytes) of every B-tree of the person-index tables."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute(
            "SELECT m.tbl_name, s.name, count(*), sum(s.payload) FROM dbstat AS s JOIN sqlite_master AS m "
            "ON m.name = s.name GROUP BY s.name ORDER BY m.tbl_name, s.name").fetchall()
    finally:
        con.close()
    return [r for r in rows if r[0] in TABLES]


def _frames_by_btree(db: Path, wal: Path, start: int, page: int) -> Counter:
    """Pages written to the WAL from byte ``start`` on, by the B-tree (table or index) they belong to.

    Each frame starts with a 24-byte header whose first 4 bytes are the page number; ``dbstat`` names the
    B-tree of each page (read after the run: pages are not moved without a VACUUM).
    """
    con = sqlite3.connect(db)
    try:
        owner = dict(con.execute("SELECT pageno, name FROM dbstat"))
    finally:
        con.close()
    counts: Counter = Counter()
    with wal.open("rb") as f:
        f.seek(max(start, 32))  # after the WAL header
        while header := f.read(24):
            if len(header) < 24:
                break
            counts[owner.get(int.from_bytes(header[:4], "big"), "(free or new)")] += 1
            f.seek(page, 1)
    return counts


def measure(size: int, batch: int, checkpoint: int | None, page_size: int = 0) -> None:
    """Link ``size`` demo bookings and print what the last tenth of the commits cost."""
    from sqlalchemy import event

    import exchange.state.person_index as person_index
    from exchange.state.db import open_engine
    from exchange.state.person_index import PersonIndex

    records = _bookings(size)
    candidates = Counter()
    real_scorer = person_index.Scorer

    def counting_scorer(tokens, parameters):
        scorer = real_scorer(tokens, parameters)
        candidates["searches"] += 1

        def score(other):
            candidates["scored"] += 1
            return scorer(other)
        return score

    person_index.Scorer = counting_scorer
    try:
        with tempfile.TemporaryDirectory() as home:
            if page_size:  # fixed before the file has any page: open_engine's WAL switch would fix it
                con = sqlite3.connect(f"{home}/index.db")
                con.execute(f"PRAGMA page_size={page_size}")
                con.execute("PRAGMA journal_mode=WAL")
                con.close()
            engine = open_engine(f"sqlite:///{home}/index.db")

            if checkpoint is not None:
                @event.listens_for(engine, "connect")
                def _checkpoint(dbapi_connection, _record):
                    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={checkpoint}")

            engine.dispose()
            index = PersonIndex(engine, b"bench-person-index-secret-32-bytes!", exchange="bench")
            wal = Path(home) / "index.db-wal"
            with engine.connect() as conn:
                page = conn.exec_driver_sql("PRAGMA page_size").scalar()
                checkpoint = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            links, frames, tail_at = [], [], 0
            tail = len(records) - len(records) // 10
            started = cpu = io = None
            for start in range(0, len(records), batch):
                if start >= tail and started is None:
                    started, cpu, io = time.perf_counter(), time.process_time(), _io()
                    tail_at = wal.stat().st_size if wal.exists() else 0
                    candidates.clear()
                before = wal.stat().st_size if wal.exists() else 0
                links += index.link_many(records[start:start + batch], NOW)
                if started is not None:
                    frames.append(max(0, wal.stat().st_size - before) // (page + 24))
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            wchar, written = (a - b for a, b in zip(_io(), io))
            counted = len(records) - tail
            by_btree = _frames_by_btree(Path(home) / "index.db", wal, tail_at, page) if not checkpoint else {}
            digest = _outcome_digest(links, engine)
            engine.dispose()
            sizes = _sizes(Path(home) / "index.db")
            stored = sum(f.stat().st_size for f in Path(home).iterdir())
    finally:
        person_index.Scorer = real_scorer
    commits = len(frames)
    print(f"{len(records):,} bookings, {batch} a commit, wal_autocheckpoint {checkpoint}, page {page} B; "
          f"the last {counted:,} records ({commits} commits):")
    print(f"  {took / counted * 1e6:,.0f} us/record wall, {cpu / counted * 1e6:,.0f} CPU; "
          f"WAL frames/commit {sum(frames) / commits:,.0f} ({sum(frames) / counted:.1f} pages/record); "
          f"wchar {wchar / commits / 1024:,.0f} KiB/commit, block writes {written / commits / 1024:,.0f} KiB/commit")
    print(f"  searches {candidates['searches']:,}, candidates scored {candidates['scored']:,} "
          f"({candidates['scored'] / max(1, candidates['searches']):.1f} a search); "
          f"rules {dict(sorted(Counter(link.rule for link in links).items()))}; outcome {digest}; "
          f"file {stored / 2**20:.1f} MiB")
    for table, name, pages, payload in sizes:
        written = f"{by_btree.get(name, 0) / commits:>7,.1f} pages written a commit" if by_btree else ""
        print(f"    {table:<22} {name:<40} {pages:>8,} pages {payload / 2**20:>8.1f} MiB payload {written}")
    if by_btree:
        others = sum(n for name, n in by_btree.items() if name not in {s[1] for s in sizes})
        print(f"    (other pages: schema, free list, new pages since freed: {others / commits:,.1f} a commit)")


def main() -> None:
    """Measure each size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000,50000")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--checkpoint", type=int, default=None,
                        help="wal_autocheckpoint pages (0: never, as the per-B-tree count needs; default: as open_engine sets)")
    parser.add_argument("--page-size", type=int, default=0, help="page size of the new file (0: the default)")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        measure(size, args.batch, args.checkpoint, args.page_size)


if __name__ == "__main__":
    main()
