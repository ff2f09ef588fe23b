"""Airflow test setup shared by tests/dags: one migrated metadata DB per session, exchange homes, DAG loading.

AIRFLOW_HOME, DAGS_FOLDER and LOAD_EXAMPLES are set in tests/conftest.py before anything imports airflow.
Each test writes its own exchange YAML (a distinct name, so distinct DAG ids in the shared metadata DB) into
its own exchange home, points NIEM_EXCHANGE_CONFIGS at it and loads dags/niem_exchanges.py the way the DAG
processor does.
"""
from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the throwaway SQLite metadata database once per session; returns its path."""
    from airflow.utils import db

    db.initdb()
    return Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"


@pytest.fixture
def exchange_home(tmp_path, demo_run) -> Path:
    """A fresh exchange home holding the session's dev PKI (copied, not re-minted: minting is slow)."""
    cli_home, _ = demo_run
    home = tmp_path / "home"
    shutil.copytree(cli_home / "certs", home / "certs")
    return home


@pytest.fixture
def write_exchange(exchange_home, demo_config, monkeypatch) -> Callable[..., Path]:
    """``write_exchange(name, edit=None)``: the demo YAML renamed (and edited), set as this test's only DAG."""

    def write(name: str, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
        raw = yaml.safe_load(demo_config.read_text())
        raw["name"] = name
        raw.setdefault("airflow", {}).update({"retries": 0})  # dag.test() would otherwise wait out retries
        if edit is not None:
            edit(raw)
        path = exchange_home / "exchanges" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        monkeypatch.setenv("NIEM_EXCHANGE_CONFIGS", str(path.parent))
        monkeypatch.setenv("NIEM_EXCHANGE_HOME", str(exchange_home))
        return path

    return write


@pytest.fixture(scope="session")
def phi_canaries() -> set[str]:
    """Values from the demo drop that identify a person: names, SSNs, inmate numbers, fingerprint ids."""
    from exchange.config import demo_data_dir

    values: set[str] = set()
    with open(demo_data_dir() / "bookings.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            values.add(f"{row['first_name']} {row['last_name']}")
            values.update(v for v in (row["ssn"], row["inmate_number"], row["fingerprint_id"]) if len(v) >= 8)
    return values


@pytest.fixture
def small_drop(exchange_home) -> Path:
    """The first 20 bookings of the demo drop (and their charges) in ``<home>/drop``: a fast exchange."""
    from exchange.config import demo_data_dir

    drop = exchange_home / "drop"
    drop.mkdir()
    bookings = (demo_data_dir() / "bookings.csv").read_text().splitlines(keepends=True)[:21]
    (drop / "bookings.csv").write_text("".join(bookings))
    numbers = {row["booking_number"] for row in csv.DictReader(bookings)}
    with open(demo_data_dir() / "booking_charges.csv", newline="") as handle:
        charges = list(csv.DictReader(handle))
    with open(drop / "booking_charges.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(charges[0]))
        writer.writeheader()
        writer.writerows(c for c in charges if c["booking_number"] in numbers)
    return drop
