"""Batch linking of CSV extracts (``niem-exchange identity link``): try matching before go-live.

IT staff point it at their own extracts (a jail roster, an EHR patient list), map their column names to the
fields the matcher knows, and get ``file,row,shared_id,score`` back. The values never reach DuckDB in clear:
each token is hashed under a random key made for this run and thrown away after it, so the scratch database
Splink builds holds only unlinkable hashes. Shared ids here are fresh random ids per cluster, not the person
index's: this is a dry run, nothing is stored.

``niem-exchange identity train`` reads extracts the same way and has Splink estimate a model from them
(:func:`train_files`); an exchange YAML points ``identity.model`` at the file, and ``identity link --model``
tries it first.
"""
from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.identity.model import check_backend, default_model, link_tables, train_model
from exchange.state.person_index import new_shared_id
from transforms.identity_normalise import FIELDS, tokens_for
from transforms.identity_tokens import keyed_tokens

TRAIN_MIN_ROWS = 10_000
"""From this many rows on, Splink estimates the parameters from the extracts themselves."""


class MappingError(ValueError):
    """The column mapping does not fit a file (names the file and the field, never a value)."""


@dataclass(frozen=True, slots=True)
class RowLink:
    """One output row: which file and data row (1 = first row after the header), its cluster id and score."""

    file: str
    row: int
    shared_id: str
    score: float | None  # best match probability to another row of its cluster; None if alone or unreadable


def parse_columns(text: str) -> dict[str, str]:
    """``"given_name=first_name,surname=last_name"`` -> ``{"given_name": "first_name", ...}``."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        field, sep, column = item.partition("=")
        if not sep or not column.strip():
            raise MappingError(f"--columns item {item!r} is not FIELD=COLUMN")
        out[field.strip()] = column.strip()
    return check_fields(out)


def check_fields(mapping: Mapping[str, str]) -> dict[str, str]:
    """Refuse unknown field names (a typo must not silently drop a field from matching)."""
    unknown = sorted(set(mapping) - set(FIELDS))
    if unknown:
        raise MappingError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    return dict(mapping)


def _dialect(sample: str) -> str:
    header = sample.splitlines()[0] if sample else ""
    return max(",|\t;", key=header.count)


def read_extract(path: Path, mapping: Mapping[str, str]) -> tuple[list[dict[str, object] | None], list[int]]:
    """Read one CSV into field mappings (None for a row with the wrong number of cells) and the bad rows."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text), delimiter=_dialect(text))
    header = [h.strip() for h in next(reader, [])]
    missing = [column for column in mapping.values() if column not in header]
    if missing:
        raise MappingError(f"{path.name}: column(s) {', '.join(missing)} not in the header")
    where = {field: header.index(column) for field, column in mapping.items()}
    rows: list[dict[str, object] | None] = []
    bad = []
    for number, cells in enumerate(reader, start=1):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            rows.append(None)
            bad.append(number)
            continue
        rows.append({field: cells[i] for field, i in where.items()})
    return rows, bad


def _token_tables(paths: Sequence[Path], mappings: Mapping[str, Mapping[str, str]]
                  ) -> tuple[list[list[dict[str, str]]], list[tuple[str, int, bool]], dict[str, list[int]]]:
    """One table of keyed-hash token rows per file, (file, row, readable) per data row, and bad rows per file.

    Each token is hashed under a random key made for this call and thrown away after it, so whatever
    database Splink builds holds only unlinkable hashes; the comparisons are equalities, so the estimated
    parameters are those of the values themselves.
    """
    key = secrets.token_bytes(32)
    tables, index, bad = [], [], {}
    for path in paths:
        rows, bad_rows = read_extract(path, mappings[path.name])
        if bad_rows:
            bad[path.name] = bad_rows
        table = []
        for number, values in enumerate(rows, start=1):
            uid = f"{len(index)}"
            index.append((path.name, number, values is not None))
            if values is None:
                continue
            tokens = keyed_tokens(tokens_for(values), key)
            tokens["unique_id"] = uid
            table.append(tokens)
        tables.append(table)
    return tables, index, bad


def train_files(paths: Sequence[Path], mappings: Mapping[str, Mapping[str, str]], *, backend: str = "duckdb",
                max_pairs: float = 2e6, seed: int = 42) -> tuple[dict[str, Any], int, dict[str, list[int]]]:
    """Estimate a model from the extracts (:func:`exchange.identity.model.train_model`, no labels needed).

    Returns the saved Splink model, how many rows it was estimated from, and the unreadable rows per file.
    """
    check_backend(backend)  # before reading anything: a missing engine is the first thing to say
    tables, _index, bad = _token_tables(paths, mappings)
    present = [t for t in tables if t]
    model = train_model(present, backend=backend, max_pairs=max_pairs, seed=seed)
    return model, sum(map(len, present)), bad


def link_files(
    paths: Sequence[Path], mappings: Mapping[str, Mapping[str, str]], *, threshold: float = 0.99,
    model: Mapping[str, Any] | None = None,
) -> tuple[list[RowLink], dict[str, list[int]]]:
    """Link and dedupe the files; return one :class:`RowLink` per data row and the unreadable rows per file.

    ``mappings`` maps each file's name to its field -> column mapping. With ``model`` (a saved Splink model,
    e.g. from :func:`train_files`) the rows are scored with it; otherwise Splink estimates the parameters
    from the files themselves from :data:`TRAIN_MIN_ROWS` rows on, and the shipped model scores fewer.
    """
    tables, index, bad = _token_tables(paths, mappings)
    present = [t for t in tables if t]
    if model is None and sum(map(len, present)) < TRAIN_MIN_ROWS:
        model = default_model()  # too few rows to estimate parameters from: the shipped model
    linkage = link_tables(present, threshold=threshold, model=model,
                          link_type="link_and_dedupe" if len(present) > 1 else "dedupe_only") if present else None
    cluster_ids: dict[str, str] = {}
    best: dict[str, float] = {}
    if linkage:
        for left, right, _weight, probability in linkage.pairs:
            if probability >= threshold and linkage.clusters.get(left) == linkage.clusters.get(right):
                best[left] = max(best.get(left, 0.0), probability)
                best[right] = max(best.get(right, 0.0), probability)
    out = []
    for uid, (name, number, readable) in enumerate(index):
        if not readable:
            out.append(RowLink(name, number, "", None))
            continue
        cluster = linkage.clusters.get(str(uid), str(uid)) if linkage else str(uid)
        shared = cluster_ids.setdefault(cluster, new_shared_id())
        out.append(RowLink(name, number, shared, best.get(str(uid))))
    return out, bad
