"""A state database written before the ledger recorded accounting exemptions keeps working and verifying."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from exchange.state import ledger
from exchange.state.db import open_engine


def _entry(n: int, exempt: str = "") -> ledger.Disclosure:
    return ledger.Disclosure(datetime(2026, 1, n, tzinfo=timezone.utc), "x", "r", "Recipient", "NXP-A", f"m{n}",
                             "BookingNotification", "0" * 64, ("name",), "p", "b", exempt)


def test_old_ledger_gains_the_column_and_its_chain_still_verifies(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    engine = open_engine(url)
    with engine.begin() as conn:
        ledger.append(conn, _entry(1))
        ledger.append(conn, _entry(2))
    engine.dispose()
    with sqlite3.connect(tmp_path / "state.db") as db:  # as an earlier version left it
        db.execute("ALTER TABLE ledger DROP COLUMN accounting_exempt")
    engine = open_engine(url)
    assert ledger.verify_chain(engine).ok
    with engine.begin() as conn:
        ledger.append(conn, _entry(3, "45 CFR 164.528(a)(1)(vii)"))
    report = ledger.verify_chain(engine)
    assert report.ok and report.entries == 3
    assert [d.accounting_exempt for d in ledger.entries_for(engine, "NXP-A")] == ["", "", "45 CFR 164.528(a)(1)(vii)"]
