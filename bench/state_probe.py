"""Watch a busy SQLite state database: who holds its write lock, who checkpoints, and where its log stands.

Run beside a pipeline (a bench run's database is under ``/tmp/bench-pipeline-size-*/workers-2/var/``):
``.venv/bin/python -m bench.state_probe PATH/state.db [--seconds 20]``. Linux only. It takes no lock and
opens no connection, so it costs the run only the sampling itself (a read of ``/proc/locks`` and of the
``-shm`` file's first 48 bytes a millisecond). Always its own process: closing any descriptor of a file drops
every POSIX lock the closing process holds on it, so :func:`sample` called in a process that has the database
open would break that process's SQLite locks.

What it reads (SQLite's WAL format, https://sqlite.org/walformat.html): a writer holds a POSIX lock on byte
120 of ``<database>-shm`` from ``BEGIN IMMEDIATE`` (or its first write) to the end of its transaction, and a
checkpointer byte 121 while it copies the log into the database file; ``/proc/locks`` lists both with the
holder's process id. The ``-shm`` file's header holds how many frames the log has (``mxFrame``) and its
salts, which change each time a writer starts the log over.

It prints, over the sampled time: how much of it the write lock and the checkpoint lock were held, per
process; the log's median and largest length in frames and the share of time it was past SQLite's
``wal_autocheckpoint`` (:data:`exchange.state.db.WAL_AUTOCHECKPOINT`: past it, every commit runs a
checkpoint); how many times the log started over. Numbers from real runs: bench/RESULTS.md, ninth session.
"""
from __future__ import annotations

import argparse
import os
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from exchange.state.db import WAL_AUTOCHECKPOINT

WRITE_LOCK_BYTE = 120
CHECKPOINT_LOCK_BYTE = 121


@dataclass(slots=True)
class Probe:
    """What :func:`sample` saw: samples taken, per process id how many found it holding each lock, log lengths."""

    samples: int = 0
    writers: Counter = field(default_factory=Counter)
    checkpointers: Counter = field(default_factory=Counter)
    frames: list[int] = field(default_factory=list)
    restarts: int = 0

    def held(self, counts: Counter) -> float:
        """The share of samples in which some process held the lock ``counts`` counts."""
        return sum(counts.values()) / self.samples if self.samples else 0.0

    def report(self) -> str:
        def who(counts: Counter) -> str:
            return ", ".join(f"pid {pid} {100 * n / self.samples:.1f}%" for pid, n in counts.most_common())

        frames = sorted(self.frames) or [0]
        past = sum(f > WAL_AUTOCHECKPOINT for f in frames) / len(frames)
        return (f"{self.samples} samples: write lock held {100 * self.held(self.writers):.1f}% ({who(self.writers)}); "
                f"checkpoint lock held {100 * self.held(self.checkpointers):.1f}% ({who(self.checkpointers)}); "
                f"log median {frames[len(frames) // 2]} frames, largest {frames[-1]}, past {WAL_AUTOCHECKPOINT} "
                f"{100 * past:.0f}% of the time; started over {self.restarts} times")


def _holders(inode: int) -> tuple[int | None, int | None]:
    """(pid holding the write lock, pid holding the checkpoint lock) of the ``-shm`` file with ``inode``."""
    writer = checkpointer = None
    suffix = f":{inode}"
    with open("/proc/locks") as locks:
        for line in locks:
            # "1: POSIX  ADVISORY  WRITE 6455 fe:00:2260967 120 120"
            parts = line.split()
            if len(parts) >= 8 and parts[3] == "WRITE" and parts[5].endswith(suffix):
                if parts[6] == str(WRITE_LOCK_BYTE):
                    writer = int(parts[4])
                elif parts[6] == str(CHECKPOINT_LOCK_BYTE):
                    checkpointer = int(parts[4])
    return writer, checkpointer


def _log_position(shm: Path) -> tuple[int, bytes]:
    """(frames in the log, its salts) from the first copy of the WAL-index header (native byte order)."""
    with open(shm, "rb") as f:
        header = f.read(48)
    return struct.unpack_from("=I", header, 16)[0], header[32:40]


def sample(database: Path, seconds: float, interval: float = 0.001) -> Probe:
    """Sample ``database``'s locks and log for ``seconds``."""
    shm = Path(f"{database}-shm")
    inode = os.stat(shm).st_ino
    probe = Probe()
    salts = None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        writer, checkpointer = _holders(inode)
        frames, salt = _log_position(shm)
        probe.samples += 1
        if writer is not None:
            probe.writers[writer] += 1
        if checkpointer is not None:
            probe.checkpointers[checkpointer] += 1
        probe.frames.append(frames)
        if salts is not None and salt != salts:
            probe.restarts += 1
        salts = salt
        time.sleep(interval)
    return probe


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path, help="the state database (SQLite, WAL mode, in use)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to sample (default 20)")
    args = parser.parse_args(argv)
    if not Path(f"{args.database}-shm").exists():
        parser.error(f"{args.database}-shm does not exist: is the database open in WAL mode?")
    print(sample(args.database, args.seconds).report())


if __name__ == "__main__":
    main()
