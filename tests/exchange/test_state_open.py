"""Many processes opening the same new state database at the same moment (Airflow's mapped tasks, ``run
--workers``): each one opens it, exactly one creates the tables, none fails."""
from __future__ import annotations

import multiprocessing
import time

import pytest
from sqlalchemy import inspect

OPENERS = 6
STAGGER = 0.002  # seconds between one opener and the next


def _open_at(url: str, start: float) -> str:
    """Open the database from wall-clock ``start`` on (every process at once, each importing the package
    first, so their CREATE TABLEs interleave); "ok" or the error."""
    while time.time() < start:
        pass
    try:
        from exchange.state.db import open_engine

        open_engine(url).dispose()
    except Exception as error:  # reported to the test, which prints it
        return f"{type(error).__name__}: {str(error)[:200]}"
    return "ok"


def _open_together(url: str) -> list[str]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(OPENERS) as pool:
        pool.map(str, range(OPENERS))  # every worker started before the clock
        start = time.time() + 1.0
        # Staggered by a few milliseconds: later openers arrive while the first is creating the tables.
        return pool.starmap(_open_at, [(url, start + i * STAGGER) for i in range(OPENERS)])


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'state.db'}"
        return
    from sqlalchemy import create_engine

    url = request.getfixturevalue("postgres_state_url")
    yield url
    engine = create_engine(url)
    from exchange.state.db import metadata

    metadata.drop_all(engine)
    engine.dispose()


def test_processes_opening_a_new_database_together_all_succeed(fresh_url):
    from exchange.state.db import metadata, open_engine

    # Without the schema lock this failed most times on SQLite ("table outbox_payload already exists").
    assert _open_together(fresh_url) == ["ok"] * OPENERS
    engine = open_engine(fresh_url)
    try:
        assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
