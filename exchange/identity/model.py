"""The probabilistic tier's engine: a Splink 5 model on DuckDB built from the comparison spec.

:mod:`transforms.identity_comparisons` says *what* is compared; this module hands it to Splink, which
estimates the Fellegi-Sunter parameters (u by random sampling, m by expectation maximisation), generates
candidate pairs by blocking, scores them and clusters them. DuckDB runs in-process, so "linking a county"
needs no server; :func:`train_model` can estimate on Spark (``splink.SparkAPI``, the same spec written in
Spark SQL) when a state outgrows one machine, if pyspark and Java are installed. A saved model's SQL is
never run: :func:`settings_from_model` regenerates it from the spec and carries over only the probabilities.

Inputs are token tables (one dict per record, from :func:`transforms.identity_normalise.tokens_for`),
either in clear or as keyed hashes: the comparisons are equalities, so Splink never needs the values
themselves. The caller chooses; ``identity link`` hashes under a per-run random key.
"""
from __future__ import annotations

import atexit
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from transforms.identity_comparisons import BLOCKING_KEYS, COMPARISONS, HARD_CONFLICTS, Parameters, log2_ratio
from transforms.identity_normalise import SET_SEPARATOR, TOKENS

DEFAULT_MODEL = "default_model.json"
"""Parameters shipped with the package (trained by Splink on generated people, see ``bench/identity.py``)."""


_QUOTE = {"duckdb": '"', "spark": "`"}  # Spark SQL reads "x" as a string literal, `x` as a column
_OVERLAP = {"duckdb": "list_has_any(string_split({a}, '{sep}'), string_split({b}, '{sep}'))",
            "spark": "arrays_overlap(split({a}, '{sep}'), split({b}, '{sep}'))"}


def _column(name: str, dialect: str, side: str = "") -> str:
    q = _QUOTE[dialect]
    return f"{side}.{q}{name}{q}" if side else f"{q}{name}{q}"


def splink_settings(link_type: str = "link_and_dedupe", dialect: str = "duckdb") -> dict[str, Any]:
    """A Splink settings dictionary with one comparison per spec entry and one blocking rule per key.

    ``dialect`` is the SQL of the backend that runs it: ``duckdb`` or ``spark`` (quoting and the one
    set-overlap function differ; everything else is plain equality).
    """
    comparisons = []
    for comparison in COMPARISONS:
        key = comparison.key
        levels: list[dict[str, Any]] = [{
            "sql_condition": f"{_column(key + '_l', dialect)} IS NULL OR {_column(key + '_r', dialect)} IS NULL",
            "label_for_charts": "unknown", "is_null_level": True,
        }]
        for level in comparison.levels:
            sql = " OR ".join(
                _OVERLAP[dialect].format(a=_column(a + "_l", dialect), b=_column(b + "_r", dialect), sep=SET_SEPARATOR)
                if a.endswith("_del") else f"{_column(a + '_l', dialect)} = {_column(b + '_r', dialect)}"
                for a, b in level.pairs)
            levels.append({"sql_condition": f"({sql})", "label_for_charts": level.label})
        levels.append({"sql_condition": "ELSE", "label_for_charts": "different"})
        comparisons.append({"output_column_name": comparison.name, "comparison_levels": levels})
    blocking = [_equal(key, dialect) for key in BLOCKING_KEYS]
    return {
        "link_type": link_type,
        "unique_id_column_name": "unique_id",
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": blocking,
        "retain_matching_columns": True,  # keeps the gamma columns the hard-conflict filter reads
        "retain_intermediate_calculation_columns": False,
        "probability_two_random_records_match": 1e-4,
    }


def _frame(rows: Iterable[Mapping[str, str]], source: str):
    """A pandas frame of token rows (``""`` -> NULL, so SQL equality never matches two unknowns)."""
    import pandas as pd

    columns: dict[str, list] = {"unique_id": [], "source_dataset": []}
    columns.update({t: [] for t in TOKENS})
    for row in rows:
        columns["unique_id"].append(row["unique_id"])
        columns["source_dataset"].append(source)
        for t in TOKENS:
            columns[t].append(row.get(t) or None)
    return pd.DataFrame(columns, dtype="object")


@dataclass
class Linkage:
    """The outcome of a batch linkage: scored candidate pairs and a cluster id per record."""

    pairs: list[tuple[str, str, float, float]]  # (unique_id_l, unique_id_r, match_weight, match_probability)
    clusters: dict[str, str]  # unique_id -> cluster id (Splink's representative unique_id)
    model: dict[str, Any]  # the trained Splink model, as save_model_to_json returns it


def link_tables(
    tables: Sequence[Iterable[Mapping[str, str]]],
    *,
    threshold: float = 0.9,
    model: Mapping[str, Any] | None = None,
    link_type: str | None = None,
    max_pairs: float = 2e6,
    seed: int = 42,
    conflicts: bool = True,
) -> Linkage:
    """Link and dedupe token tables with Splink on an in-process DuckDB; cluster at ``threshold``.

    Every row needs a ``unique_id`` unique across all tables. With ``model`` (a saved Splink model) the
    parameters are used as they are; otherwise they are estimated from the data: u by random sampling,
    the match prior from near-certain rules, m by EM over two blockings so every comparison gets an
    estimate. Pairs below 0.01 probability are not returned. With ``conflicts`` (the default), pairs with a
    hard conflict (:data:`transforms.identity_comparisons.HARD_CONFLICTS`: twins, father and son) get
    probability 0, as the person index never links them automatically either.
    """
    if model is not None:
        linker = _linker(tables, settings_from_model(model, link_type or _link_type(tables)))
    else:
        linker = _linker(tables, splink_settings(link_type or _link_type(tables)))
        train(linker, max_pairs=max_pairs, seed=seed)
    predictions = linker.inference.predict(threshold_match_probability=0.01)
    if conflicts:
        predictions = linker.misc.query_sql(_without_conflicts(predictions.physical_name), "splink_df")
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold)
    pairs_rel = predictions.as_duckdbpyrelation().select(
        "unique_id_l, unique_id_r, match_weight, match_probability")
    pairs = [(str(a), str(b), float(w), float(p)) for a, b, w, p in pairs_rel.fetchall()]
    clusters = {str(u): str(c) for u, c in clustered.as_duckdbpyrelation().select(
        "unique_id, cluster_id").fetchall()}
    saved = linker.misc.save_model_to_json()
    return Linkage(pairs, clusters, saved)


def _equal(tokens: Sequence[str], dialect: str) -> str:
    """A blocking or training rule: the pair agrees on every one of ``tokens``."""
    return " AND ".join(f"{_column(t, dialect, 'l')} = {_column(t, dialect, 'r')}" for t in tokens)


def settings_from_model(model: Mapping[str, Any], link_type: str, dialect: str = "duckdb") -> dict[str, Any]:
    """Settings for ``dialect`` carrying a saved model's probabilities; the model's own SQL is never run.

    The SQL is generated afresh from the comparison spec and the m and u probabilities are copied by
    position (as :func:`parameters_from_splink` reads them), so a model estimated on Spark links on DuckDB
    and a model file cannot smuggle SQL into the engine.
    """
    parameters_from_splink(model)  # same spec, or refused before anything runs
    settings = splink_settings(link_type, dialect)
    settings["probability_two_random_records_match"] = float(model["probability_two_random_records_match"])
    saved = {c["output_column_name"]: c["comparison_levels"] for c in model["comparisons"]}
    for comparison in settings["comparisons"]:
        for level, old in zip(comparison["comparison_levels"], saved[comparison["output_column_name"]]):
            for name in ("m_probability", "u_probability"):
                if not level.get("is_null_level") and old.get(name) is not None:
                    level[name] = float(old[name])
    return settings


def _link_type(tables: Sequence[Iterable[Mapping[str, str]]]) -> str:
    return "link_and_dedupe" if len(tables) > 1 else "dedupe_only"


def _linker(tables: Sequence[Iterable[Mapping[str, str]]], settings: Mapping[str, Any], backend: str = "duckdb"):
    """A Splink linker over the token tables, on a fresh in-process DuckDB (or the Spark session)."""
    from splink import Linker

    logging.getLogger("splink").setLevel(logging.ERROR)
    if backend == "spark":
        return _spark_linker(tables, settings)
    import duckdb
    from splink import DuckDBAPI

    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")  # a CLI's stderr is for our messages
    db = DuckDBAPI(connection)
    frames = [db.register(_frame(rows, f"t{i}"), dataset_display_name=f"t{i}") for i, rows in enumerate(tables)]
    return Linker(frames if len(frames) > 1 else frames[0], dict(settings), log_level=None)


def _spark_linker(tables: Sequence[Iterable[Mapping[str, str]]], settings: Mapping[str, Any]):
    """The same linker on Spark (``SparkSession.builder`` picks up ``SPARK_*`` / ``spark-defaults.conf``).

    Needs pyspark and Java (the ``spark`` extra; ``make setup`` installs both); see exchange/identity/README.md.
    """
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StringType, StructField, StructType
    from splink import Linker, SparkAPI

    spark = (SparkSession.builder.appName("niem-exchange identity train")
             .config("spark.ui.showConsoleProgress", "false")  # a CLI's stderr is for our messages
             .getOrCreate())
    if spark.sparkContext.getCheckpointDir() is None:
        # Splink checkpoints intermediate tables; what lands there is hashed tokens only, never values.
        checkpoints = tempfile.mkdtemp(prefix="niem-exchange-spark-")
        atexit.register(shutil.rmtree, checkpoints, ignore_errors=True)  # gone when this process ends
        spark.sparkContext.setCheckpointDir(checkpoints)
    db = SparkAPI(spark_session=spark)
    # Every token column is text; given explicitly because Spark cannot infer a type for an all-NULL column.
    schema = StructType([StructField(name, StringType(), True)
                         for name in ("unique_id", "source_dataset", *TOKENS)])
    frames = [db.register(spark.createDataFrame(_frame(rows, f"t{i}"), schema=schema),
                          dataset_display_name=f"t{i}")
              for i, rows in enumerate(tables)]
    return Linker(frames if len(frames) > 1 else frames[0], dict(settings), log_level=None)


TRAIN_MIN_RECORDS = 1000
"""Fewer records than this give Splink too few pairs to estimate m and u from (tens of thousands are best)."""

BACKENDS = ("duckdb", "spark")
"""Engines :func:`train_model` can estimate on: DuckDB in-process; Spark for a state's volumes."""


class BackendUnavailableError(RuntimeError):
    """The chosen Splink backend cannot run here; the message says what to install."""


def check_backend(backend: str) -> None:
    """Refuse an unknown backend, or one whose engine is not installed, with what to install."""
    import importlib.util

    if backend not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    if backend == "spark":
        missing = []
        if importlib.util.find_spec("pyspark") is None:
            missing.append("pyspark 3.5 or later (pip install pyspark: Splink's spark extra)")
        if shutil.which("java") is None:
            missing.append("a Java runtime, 11 or 17 (java on PATH or JAVA_HOME)")
        if missing:
            raise BackendUnavailableError(
                "the Spark backend needs " + " and ".join(missing) + ", which niem-exchange does not install. "
                "Train on DuckDB (--backend duckdb) meanwhile: the model file is the same")


def train_model(
    tables: Sequence[Iterable[Mapping[str, str]]], *, backend: str = "duckdb", max_pairs: float = 2e6,
    seed: int = 42,
) -> dict[str, Any]:
    """Estimate the Fellegi-Sunter parameters from token tables (no labels) and return the saved model.

    The same estimation :func:`link_tables` runs when given no model (:func:`train`): u by random sampling
    of ``max_pairs`` pairs, the prior from near-certain rules, m by expectation maximisation over two
    blockings. The result is what ``identity.model`` in an exchange YAML and ``identity link --model`` read.
    """
    from splink.internals.exceptions import EMTrainingException

    check_backend(backend)
    tables = [list(t) for t in tables]
    rows = sum(map(len, tables))
    if rows < TRAIN_MIN_RECORDS:
        raise ValueError(f"training needs at least {TRAIN_MIN_RECORDS} records, these extracts have {rows}")
    linker = _linker(tables, splink_settings(_link_type(tables), backend), backend)
    try:
        train(linker, max_pairs=max_pairs, seed=seed, dialect=backend)
    except EMTrainingException:
        raise ValueError("too few records share a birth date, or a name sound, for expectation maximisation "
                         "to estimate from; train on more records") from None
    model = linker.misc.save_model_to_json()
    parameters_from_splink(model)  # refuse to hand out a model the person index could not read
    return model


def load_model(text: str) -> dict[str, Any]:
    """Parse a model file's text and check it fits the comparison spec (ValueError says where not)."""
    try:
        model = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON (line {error.lineno})") from None
    if not isinstance(model, dict) or "comparisons" not in model or \
            "probability_two_random_records_match" not in model:
        raise ValueError("not a Splink model (no comparisons or prior)")
    try:
        parameters_from_splink(model)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a Splink model ({type(error).__name__} reading it)") from None
    return model


def _without_conflicts(table: str) -> str:
    """SQL over a predictions table that zeroes the probability of pairs with a hard conflict."""
    clauses = " OR ".join(
        "(" + " AND ".join(f'"gamma_{name}" IN ({", ".join(map(str, values))})' for name, values in rule.items())
        + ")" for _reason, rule in HARD_CONFLICTS)
    return (f"SELECT * REPLACE (CASE WHEN {clauses} THEN -99.0 ELSE match_weight END AS match_weight, "
            f"CASE WHEN {clauses} THEN 0.0 ELSE match_probability END AS match_probability) FROM {table}")


def train(linker, *, max_pairs: float = 2e6, seed: int = 42, dialect: str = "duckdb") -> None:
    """Estimate the model's parameters from the linker's own data (no labels needed)."""
    linker.training.estimate_probability_two_random_records_match(
        [_equal(("dob", "sn", "given_canon"), dialect), _equal(("ssn", "dob"), dialect)],
        recall=0.8,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    for rule in (("dob",), ("sn_sdx", "given_sdx")):
        linker.training.estimate_parameters_using_expectation_maximisation(_equal(rule, dialect))


def parameters_from_splink(model: Mapping[str, Any]) -> Parameters:
    """Turn a saved Splink model into :class:`Parameters` for the person index's per-record scorer.

    Levels are matched by position: the spec and :func:`splink_settings` emit them in the same order (null
    level first, "else" last); a model for another spec is refused rather than misread.
    """
    prior = float(model["probability_two_random_records_match"])
    by_name = {c["output_column_name"]: c for c in model["comparisons"]}
    weights: dict[str, dict[int, float]] = {}
    for comparison in COMPARISONS:
        saved = by_name.get(comparison.name)
        if saved is None or len(saved["comparison_levels"]) != len(comparison.levels) + 2:
            raise ValueError(f"the model does not match the comparison spec at {comparison.name!r}")
        levels = [lv for lv in saved["comparison_levels"] if not lv.get("is_null_level")]
        count = len(comparison.levels)
        weights[comparison.name] = {
            count - i: log2_ratio(lv.get("m_probability", 0.5), lv.get("u_probability", 0.5))
            for i, lv in enumerate(levels)
        }
    return Parameters(log2_ratio(prior, 1 - prior), weights)


def default_model() -> dict[str, Any]:
    """The Splink model shipped with the package."""
    return json.loads(resources.files("exchange.identity").joinpath(DEFAULT_MODEL).read_text())


def default_parameters() -> Parameters:
    """:func:`parameters_from_splink` of the shipped model."""
    return parameters_from_splink(default_model())
