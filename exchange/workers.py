"""Process an exchange's windows over several processes of one machine (``niem-exchange run --workers N``).

The pipeline's unit of work is the window, and ``process_window`` is safe to run for different windows at once
(the Airflow DAG's mapped tasks already do): linking takes the state database's write lock per chunk of
records, enqueueing is idempotent by message id, and each window completes in its own transaction. So a pool
here only has to open one exchange per worker and hand out window keys. Workers are spawned, never forked: a
forked child would inherit the parent's Saxon VM and open database connections.

Planning and delivery stay in the calling process; only window keys and counts cross between processes.
A worker ends as soon as the calling process does, however it ended (killed by Airflow or an operator): it is
never left running on its own, holding the state database open (a window it was in the middle of is resumed
by the next run, as after any crash).
"""
from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from exchange.state.windows import WindowCounts

_exchange = None  # this worker's own Exchange, opened by _start


def process_windows(config: Path, home: Path, keys: Sequence[str], workers: int,
                    credentials: Mapping[str, Mapping[str, str]] | None = None) -> Iterator[WindowCounts]:
    """Process ``keys`` over ``workers`` spawned processes; yields each window's counts in the order of ``keys``.

    The caller has opened the exchange (it plans the windows); workers open their own on the same state
    database (:func:`exchange.state.db.open_engine` lets many open a new one at once). An error in any window stops
    the run as it would in one process: windows already completed stay completed, the rest stay pending.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, max(1, len(keys))), mp_context=context, initializer=_start,
                             initargs=(Path(config), Path(home), dict(credentials or {}))) as pool:
        yield from pool.map(_process, keys)


def _start(config: Path, home: Path, credentials: dict) -> None:
    """Pool initializer: open this worker's exchange (closed when the worker process ends)."""
    global _exchange
    from exchange.runtime import open_exchange

    threading.Thread(target=end_with_parent, name="exit-with-parent", daemon=True).start()
    _exchange = open_exchange(config, home, credentials=credentials)


def end_with_parent() -> None:
    """Wait for the parent process to end, then end this worker at once.

    A pool's workers otherwise outlive a parent killed with SIGKILL or SIGTERM, waiting forever for work.
    """
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
        os._exit(1)


def _process(key: str) -> WindowCounts:
    from exchange.pipeline import process_window

    return process_window(_exchange, key)
