"""``niem-exchange iepd validate`` and ``iepd build`` as a user runs them."""
from __future__ import annotations

import zipfile
from pathlib import Path

from typer.testing import CliRunner

from exchange.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "niem_iepd/samples"
runner = CliRunner()


def test_validate_reports_line_rule_and_path_and_exits_1():
    result = runner.invoke(app, ["iepd", "validate", str(SAMPLES / "release-notification.xml"),
                                 str(SAMPLES / "invalid/release-before-booking.xml"),
                                 str(SAMPLES / "invalid/bad-birth-date.xml")])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{SAMPLES / 'release-notification.xml'}: valid" in lines
    assert f"{SAMPLES / 'invalid/release-before-booking.xml'}:20: [NX-REL-1] /rn:ReleaseNotification/j:Booking: " \
           "The release is not earlier than the booking." in lines
    bad_date = [line for line in lines if "bad-birth-date.xml:39: [XSD] " in line]
    assert len(bad_date) == 1 and "1987-13-45" not in bad_date[0]  # the value never shows
    assert lines[-1] == "1 of 3 valid"


def test_validate_all_valid_exits_0_and_refuses_a_dtd(tmp_path):
    result = runner.invoke(app, ["iepd", "validate", *map(str, sorted(SAMPLES.glob("*.xml")))])
    assert result.exit_code == 0, result.output
    evil = tmp_path / "evil.xml"
    evil.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>')
    result = runner.invoke(app, ["iepd", "validate", str(evil)])
    assert result.exit_code == 1 and "not checked" in result.output and "boom" not in result.output


def test_build_writes_the_zip_into_out(tmp_path):
    result = runner.invoke(app, ["iepd", "build", "--out", str(tmp_path / "iepd")])
    assert result.exit_code == 0, result.output
    [written] = (tmp_path / "iepd").glob("*.zip")
    assert written.name == "niem-exchange-iepd-1.0.0.zip" and "sha256" in result.output
    with zipfile.ZipFile(written) as archive:
        assert "niem-exchange-iepd-1.0.0/SHA256SUMS" in archive.namelist()
