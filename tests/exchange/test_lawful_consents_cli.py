"""``niem-exchange consents load | list | revoke`` against a real SQLite state in a fresh home."""
from __future__ import annotations

from typer.testing import CliRunner

from exchange.cli import app

HEADER = "consent_id,patient_id,discloser,recipients,purpose,information,status,signed_on,expires_on,revoked_on," \
         "part2,expiry_event\n"


def test_load_list_revoke(tmp_path):
    sheet = tmp_path / "consents.csv"
    sheet.write_text(HEADER + "C-1,Patient/7,County BH,class:law-enforcement,PUBHLTH,need flag,active,2026-01-01,"
                              "2027-01-01,,yes,\nC-2,Patient/7,County BH,pd,,,unknown,2026-01-01,,,no,\n")
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    loaded = runner.invoke(app, ["consents", "load", str(sheet), *home])
    assert loaded.exit_code == 1  # one row set aside
    assert "consents.csv#row=3: field 'status'" in loaded.output and "1 consents on file" in loaded.output
    listed = runner.invoke(app, ["consents", "list", "Patient/7", *home], env={"COLUMNS": "200"})
    assert "C-1" in listed.output and "class:law-enforcement" in listed.output and "C-2" not in listed.output
    revoked = runner.invoke(app, ["consents", "revoke", "C-1", "--on", "2026-11-20", *home])
    assert revoked.exit_code == 0, revoked.output
    assert "2026-11-20" in runner.invoke(app, ["consents", "list", "Patient/7", *home],
                                         env={"COLUMNS": "200"}).output
    assert runner.invoke(app, ["consents", "revoke", "C-9", "--on", "2026-11-20", *home]).exit_code == 1
    assert runner.invoke(app, ["consents", "revoke", "C-1", "--on", "soon", *home]).exit_code == 2
