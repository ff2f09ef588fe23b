"""``niem-exchange identity train``: a model estimated by Splink from your own extracts, used by link and the index."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from itertools import combinations
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from exchange.identity import synthetic
from exchange.identity.model import default_model
from tests.conftest import mint_demo_home
from tests.exchange.lawful_helpers import exchange_yaml, small_drop
from transforms.model import ConfigError, PersonIdentity

HEADER = ["FIRST", "MIDDLE", "LAST", "SUFFIX", "DOB", "SEX", "STREET", "ZIP", "PHONE", "SSN"]
COLUMNS = ("given_name=FIRST,middle_name=MIDDLE,surname=LAST,name_suffix=SUFFIX,birth_date=DOB,sex=SEX,"
           "street_address=STREET,postal_code=ZIP,phone=PHONE,ssn=SSN")


def _run(*args):
    from exchange.cli import app

    return CliRunner().invoke(app, ["identity", *(str(a) for a in args)])


def _extracts(directory: Path, count: int, seed: int, files: int = 2) -> tuple[list[Path], dict[tuple[str, int], int]]:
    """Generated records dealt round-robin into ``files`` CSVs; returns the paths and (file, row) -> person."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"extract{i}.csv" for i in range(files)]
    rows: list[list[list[str]]] = [[] for _ in paths]
    truth = {}
    for i, record in enumerate(synthetic.records(count, seed=seed)):
        v = synthetic.values(record)
        target = i % files
        rows[target].append([v["given_name"], v["middle_name"], v["surname"], v["name_suffix"],
                             v["birth_date"].isoformat() if v["birth_date"] else "", v["sex"],
                             v["street_address"], v["postal_code"], v["phone"], v["ssn"]])
        truth[(paths[target].name, len(rows[target]))] = record.person_id
    for path, body in zip(paths, rows):
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            writer.writerows(body)
    return paths, truth



def _f1_of_each(tmp_path: Path, test_files, truth, models: dict[str, Path]) -> dict[str, float]:
    """Link the held-out extracts with each named model through the CLI; the F1 each one reaches."""
    scores = {}
    for name, model in models.items():
        out = tmp_path / f"links-{name}.csv"
        result = _run("link", *test_files, "--columns", COLUMNS, "--model", model, "--out", out)
        assert result.exit_code == 0, result.output
        scores[name] = _f1(out, truth)
    return scores

def _f1(links: Path, truth: dict[tuple[str, int], int]) -> float:
    """Pairwise F1 of the clusters in a links.csv against the generated truth."""
    ids = {(r["file"], int(r["row"])): r["shared_id"] for r in csv.DictReader(links.open())}
    keys = sorted(truth)
    predicted = {(a, b) for a, b in combinations(keys, 2) if ids[a] == ids[b]}
    actual = {(a, b) for a, b in combinations(keys, 2) if truth[a] == truth[b]}
    right = len(predicted & actual)
    precision, recall = right / len(predicted), right / len(actual)
    return 2 * precision * recall / (precision + recall)


def test_trained_model_links_about_as_well_as_the_shipped_one(tmp_path):
    train_files, _ = _extracts(tmp_path / "train", 6000, seed=11)
    model = tmp_path / "model.json"
    trained = _run("train", *train_files, "--columns", COLUMNS, "--out", model, "--max-pairs", 300000)
    assert trained.exit_code == 0, trained.output
    assert "model estimated from 6000 rows" in trained.output
    saved = json.loads(model.read_text())
    assert saved != default_model()
    text = model.read_text()
    surnames = {r.surname for r in synthetic.records(6000, seed=11) if len(r.surname) >= 6}
    assert surnames and not [s for s in surnames if s in text], "a model holds probabilities, never values"

    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps(default_model()))
    test_files, truth = _extracts(tmp_path / "test", 1500, seed=99)
    scores = _f1_of_each(tmp_path, test_files, truth, {"trained": model, "shipped": shipped})
    assert scores["shipped"] > 0.9
    assert scores["trained"] >= scores["shipped"] - 0.02, scores


def test_exchange_yaml_points_the_person_index_at_a_model(tmp_path):
    from exchange.runtime import open_exchange

    home = mint_demo_home(tmp_path / "home")
    config = exchange_yaml(home, small_drop(tmp_path / "drop", rows=2), {"county-bh": "behavioral-health-provider"})
    lenient = default_model()
    lenient["probability_two_random_records_match"] = 0.5  # a county whose extracts are mostly repeats
    (home / "lenient.json").write_text(json.dumps(lenient))
    raw = yaml.safe_load(config.read_text())
    raw["identity"] = {"model": "lenient.json"}
    config.write_text(yaml.safe_dump(raw))

    ex = open_exchange(config, home)
    try:
        now = ex.clock()
        first = ex.persons.link("jail", "BK-1", PersonIdentity("Tanisha", "Brooks", date(1990, 12, 2)), now)
        # under the shipped model a surname change with nothing else is only a review item; here it links
        second = ex.persons.link("ehr", "MRN-1", PersonIdentity("Tanisha", "Reed", date(1990, 12, 2)), now)
        assert second.shared_id == first.shared_id and second.rule == "probabilistic"
    finally:
        ex.close()

    (home / "lenient.json").write_text('{"comparisons": []')
    with pytest.raises(ConfigError) as info:
        open_exchange(config, home)
    assert "identity.model" in str(info.value) and "identity train" in str(info.value)


def test_a_model_for_another_comparison_spec_is_refused(tmp_path):
    files, _ = _extracts(tmp_path, 20, seed=3, files=1)
    broken = default_model()
    broken["comparisons"][0]["comparison_levels"].pop(1)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = _run("link", *files, "--columns", COLUMNS, "--model", path)
    assert result.exit_code == 2 and "given_name" in result.output and "identity train" in result.output


@pytest.mark.skipif(importlib.util.find_spec("pyspark") is not None, reason="pyspark is installed here")
def test_spark_backend_without_pyspark_says_what_to_install(tmp_path):
    files, _ = _extracts(tmp_path, 20, seed=3, files=1)
    result = _run("train", *files, "--columns", COLUMNS, "--out", tmp_path / "m.json", "--backend", "spark")
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "pip install pyspark" in said and "--backend duckdb" in said
    assert not (tmp_path / "m.json").exists()


def test_spark_settings_are_spark_sql_over_the_token_columns():
    """What the Spark backend would run: every condition parses as Spark SQL and compares columns, not strings."""
    import sqlglot
    from sqlglot import exp

    from exchange.identity.model import settings_from_model, splink_settings
    from transforms.identity_normalise import TOKENS

    spark = settings_from_model(default_model(), "link_and_dedupe", dialect="spark")
    duck = splink_settings("link_and_dedupe")
    conditions = [lv["sql_condition"] for c in spark["comparisons"] for lv in c["comparison_levels"]
                  if lv["sql_condition"] != "ELSE"] + spark["blocking_rules_to_generate_predictions"]
    for sql in conditions:
        tree = sqlglot.parse_one(sql, read="spark")
        columns = {c.name.removesuffix("_l").removesuffix("_r") for c in tree.find_all(exp.Column)}
        assert columns and columns <= set(TOKENS), sql
        assert not any("_l" in s.this or "_r" in s.this for s in tree.find_all(exp.Literal) if s.is_string), sql
    # the probabilities travel with the levels, whatever the dialect
    for ours, theirs in zip(spark["comparisons"], default_model()["comparisons"]):
        assert [lv.get("m_probability") for lv in ours["comparison_levels"] if not lv.get("is_null_level")] == [
            lv.get("m_probability") for lv in theirs["comparison_levels"] if not lv.get("is_null_level")]
    assert len(duck["comparisons"]) == len(spark["comparisons"])


def test_too_few_records_to_train_on_is_a_clear_error(tmp_path):
    files, _ = _extracts(tmp_path, 50, seed=3, files=1)
    result = _run("train", *files, "--columns", COLUMNS, "--out", tmp_path / "m.json")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "at least 1000 records, these extracts have 50" in said
    assert not (tmp_path / "m.json").exists()


@pytest.mark.skipif(importlib.util.find_spec("pyspark") is None or shutil.which("java") is None,
                    reason="the Spark backend needs pyspark and Java")
def test_spark_backend_trains_a_model_that_links_as_well_as_duckdbs(tmp_path):
    # In a child process: the Spark session's JVM ends with it instead of living on in the test run.
    train_files, _ = _extracts(tmp_path / "train", 1000, seed=5)
    models = {}
    for backend in ("spark", "duckdb"):
        models[backend] = tmp_path / f"{backend}.json"
        trained = subprocess.run(
            [str(Path(sys.executable).parent / "niem-exchange"), "identity", "train", *map(str, train_files),
             "--columns", COLUMNS, "--out", str(models[backend]), "--backend", backend],
            capture_output=True, text=True, timeout=600, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
        assert trained.returncode == 0, trained.stderr[-2000:]
        assert "model estimated from 1000 rows" in trained.stdout + trained.stderr
    assert json.loads(models["spark"].read_text())["comparisons"], "the Spark model has its comparisons"
    test_files, truth = _extracts(tmp_path / "test", 800, seed=42)
    scores = _f1_of_each(tmp_path, test_files, truth, models)
    assert scores["duckdb"] > 0.9
    assert scores["spark"] >= scores["duckdb"] - 0.02, scores
