"""The IEPD's sample instances against their manifest: each valid one is valid, each invalid one raises
exactly the rules the manifest names, at a path and line, and no file is left out of the manifest."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from niem_iepd import safexml, validator

SAMPLES = Path(validator.__file__).parent / "samples"
with (SAMPLES / "manifest.csv").open(newline="") as _handle:
    ROWS = list(csv.DictReader(_handle))


def test_manifest_lists_every_sample_once():
    listed = [row["file"] for row in ROWS]
    on_disk = sorted(path.relative_to(SAMPLES).as_posix() for path in SAMPLES.rglob("*.xml"))
    assert sorted(listed) == on_disk and len(set(listed)) == len(listed)
    assert {row["expect"] for row in ROWS} == {"valid", "invalid"}


@pytest.mark.parametrize("row", ROWS, ids=[row["file"] for row in ROWS])
def test_sample_raises_exactly_the_rules_the_manifest_names(row):
    tree = safexml.parse((SAMPLES / row["file"]).read_bytes())
    assert validator.message_type_of(tree) == row["message_type"]
    issues = validator.validate(tree)
    assert " ".join(sorted({issue.rule for issue in issues})) == row["rules"]
    assert (row["expect"] == "valid") == (issues == [])
    for issue in issues:
        assert issue.path.startswith("/") and isinstance(issue.line, int) and issue.line > 0
