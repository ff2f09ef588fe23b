"""An exchange whose source is an RMS view: the real pipeline, the real cursor, a crash between windows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
import yaml

from exchange import pipeline
from exchange.config import demo_data_dir
from exchange.runtime import open_exchange

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone(timedelta(hours=-5)))


def _home(tmp_path: Path) -> Path:
    from datetime import datetime as _dt

    from exchange.commands.certs import DEMO_RECIPIENTS
    from exchange.security import mint_dev_pki

    home = tmp_path / "home"
    mint_dev_pki(home / "certs/dev", organization="Example County Sheriff's Office", recipients=DEMO_RECIPIENTS,
                 now=_dt.now(timezone.utc))
    config = yaml.safe_load((demo_data_dir() / "demo-exchange.yaml").read_text())
    config["name"] = "rms-crisis"
    # The config accepts BookingNotification only for now: the crisis contacts are read (and, not being
    # bookings, quarantined by the pipeline), which is what this test is about: the cursor.
    config["batch_size"] = 3
    config["source"] = {"kind": "rms_sql", "url": "sqlite:///rms.db", "table": "mh_calls",
                        "record_kind": "crisis_contact", "system": "county-rms",
                        "columns": {"incident_number": "call_no"}}
    (home / "exchange.yaml").write_text(yaml.safe_dump(config))
    return home


def _add_calls(home: Path, numbers: range, updated: datetime) -> None:
    engine = sa.create_engine(f"sqlite:///{home / 'rms.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS mh_calls (call_no TEXT PRIMARY KEY, first_name TEXT, "
                             "last_name TEXT, dob TEXT, sex TEXT, contact_at TEXT, agency TEXT, initiated_by TEXT, "
                             "reason TEXT, disposition TEXT, updated_at TEXT)")
        conn.exec_driver_sql("INSERT INTO mh_calls VALUES (?,?,?,?,?,?,?,?,?,?,?)", [
            (f"C{n:04d}", "Ana", f"Rivera{chr(65 + n % 26)}", "1990-02-03", "F",
             (T0 + timedelta(minutes=n)).isoformat(), "Example PD", "911", "welfare check", "CRISIS",
             updated.isoformat()) for n in numbers])
    engine.dispose()


def _run(home: Path, *, windows: int | None = None) -> int:
    """Run the exchange (or only its first ``windows`` windows, then stop as a crash would); records read."""
    ex = open_exchange(home / "exchange.yaml", home)
    try:
        if windows is None:
            return pipeline.run(ex).read
        keys = pipeline.plan(ex)[:windows]
        return sum(pipeline.process_window(ex, key).records for key in keys)
    finally:
        ex.close()


def test_rms_exchange_reads_each_row_once_across_runs_and_a_crash(tmp_path: Path) -> None:
    home = _home(tmp_path)
    _add_calls(home, range(0, 7), T0)  # one bulk update: 7 rows share one timestamp
    assert _run(home, windows=2) == 6  # two windows of 3 committed, then the process dies
    assert _run(home) == 1  # the rerun reads the one row left, nothing twice
    assert _run(home) == 0
    _add_calls(home, range(7, 9), T0 + timedelta(hours=1))
    assert _run(home) == 2  # only the new rows
