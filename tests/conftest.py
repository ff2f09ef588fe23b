"""Session-wide test setup: a throwaway Airflow home (set before anything imports airflow) and a demo run.

Keys and certificates are minted per test session into temporary directories, never committed.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests derandomized: the same examples every run, so a red CI is a real finding that
# reproduces, not a draw of the dice; developers keep random exploration locally.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="niem-airflow-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)  # each session's own, gone when it ends
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")


def mint_demo_home(home: Path) -> Path:
    """A fresh exchange home holding a dev PKI for the demo recipients."""
    from exchange.commands.certs import DEMO_RECIPIENTS
    from exchange.security import mint_dev_pki

    mint_dev_pki(home / "certs/dev", organization="Example County Sheriff's Office",
                 recipients=DEMO_RECIPIENTS, now=datetime.now(timezone.utc))
    return home


@pytest.fixture(scope="session")
def demo_config() -> Path:
    """The bundled demo exchange YAML."""
    from exchange.config import demo_data_dir

    return demo_data_dir() / "demo-exchange.yaml"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, demo_config):
    """Run the demo exchange once in a fresh home; returns (home, summary). Tests must not modify it."""
    from exchange import pipeline
    from exchange.runtime import open_exchange

    home = mint_demo_home(tmp_path_factory.mktemp("demo-home"))
    ex = open_exchange(demo_config, home)
    try:
        summary = pipeline.run(ex)
    finally:
        ex.close()
    return home, summary


# Real servers shared by integration tests (delivery and source adapters): see tests/support/. The repo root
# goes on sys.path so `tests.support` imports the same under `python -m pytest` and the bare `pytest` script.
import sys  # noqa: E402

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from tests.support.sshd import sshd_factory  # noqa: E402,F401


@pytest.fixture(scope="module")
def postgres_state_url():
    """A real PostgreSQL server for this module (skipped where the server binaries are missing)."""
    from tests.support.postgres import available, running_postgres

    if not available():
        pytest.skip("PostgreSQL server binaries not installed")
    with running_postgres() as url:
        yield url
