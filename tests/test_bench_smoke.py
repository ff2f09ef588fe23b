"""bench.pipeline runs end to end on a tiny drop and prints a row for every stage (no timing is asserted)."""
from __future__ import annotations

import shutil

import pytest

from bench import pipeline


@pytest.mark.skipif(shutil.which("xmllint") is None or shutil.which("xmlsec1") is None,
                    reason="the shell baseline needs xmllint and xmlsec1")
@pytest.mark.parametrize("signing_key", ["rsa-3072", "ec-p256"])
def test_pipeline_bench_prints_every_stage_and_both_baselines(capsys, signing_key):
    # 50 bookings: the smallest drop the demo generator makes (it needs room for every kind of defect).
    # With ec-p256 the floor and the shell script (xmlsec1 --sign) must sign with ECDSA too, or they fail.
    pipeline.main(["--records", "50", "--sample", "3", "--signing-key", signing_key])
    out = capsys.readouterr().out
    assert f"{signing_key} signing key" in out
    lines = out.splitlines()
    for stage in pipeline.STAGES:
        assert any(line.startswith(stage) for line in lines), f"no row for {stage!r}"
    assert "floor (lxml XSD + xmlsec)" in out
    assert "shell (xmllint + xmlsec1)" in out
    assert "end to end vs floor:" in out and "end to end vs shell:" in out
    assert "read -> outbox write (plan + process, delivery not counted)" in out
    assert "0 invalid" in out  # every built message passed XSD + Schematron


def test_pipeline_bench_scale_runs_each_size_in_its_own_process_and_compares_workers(capsys):
    # One tiny size: the subprocesses (generate, measure), the process pool and the table, not the numbers.
    pipeline.main(["--scale", "50", "--workers", "2"])
    out = capsys.readouterr().out
    assert "50 bookings: " in out and "peak RSS" in out
    assert "single vs 2 workers; same message ids delivered: yes" in out
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["50"] and ":" not in line)
    assert row[3] == "1.00" and row[5] == "1.00"  # the smallest size is its own baseline


def test_pipeline_bench_machine_scale_times_only_the_pooled_run(capsys):
    # As `niem-exchange run --workers 2`: no one-core run; the messages delivered are counted.
    pipeline.main(["--scale", "50", "--workers", "2", "--machine"])
    out = capsys.readouterr().out
    assert "2 workers: plan + process" in out and "the largest worker" in out
    assert "single vs" not in out  # the one-core run was skipped
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["50"] and ":" not in line)
    assert int(row[1]) > 0 and row[3] == "1.00" and row[5] == "1.00"
