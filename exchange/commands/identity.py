"""``niem-exchange identity ...``: try person matching on CSV extracts; work the clerical review queue."""
from __future__ import annotations

from pathlib import Path

import typer

from exchange.commands.common import HOME, demo_config, fail

identity_app = typer.Typer(help="Person matching: link CSV extracts, review uncertain matches.",
                           no_args_is_help=True)
review_app = typer.Typer(help="The clerical review queue of uncertain matches.", no_args_is_help=True)
identity_app.add_typer(review_app, name="review")

CONFIG = typer.Option(None, "--config", help="Exchange YAML whose state holds the queue (default: the demo).")
ACTOR = typer.Option(..., "--by", help="Who decides (recorded in the identity trail).")


def register(app: typer.Typer) -> None:
    """Add the ``identity`` group to the root CLI."""
    app.add_typer(identity_app, name="identity")


@identity_app.command("link")
def link(
    files: list[Path] = typer.Argument(..., help="CSV extracts (comma, pipe, tab or semicolon separated)."),
    columns: str = typer.Option(..., "--columns", help="FIELD=COLUMN,... for every file, or a YAML file: "
                                "{FIELD: COLUMN} for all files or {FILE_NAME: {FIELD: COLUMN}} per file. "
                                "Fields: given_name, middle_name, surname, name_suffix, birth_date, sex, "
                                "street_address, postal_code, city, phone, ssn."),
    out: Path = typer.Option(None, "--out", help="Write file,row,shared_id,score here (default: stdout)."),
    threshold: float = typer.Option(0.99, "--threshold", min=0.01, max=0.999999,
                                    help="Match probability at which two rows are the same person."),
    model: Path = typer.Option(None, "--model", help="Score with this model (from `identity train`) instead "
                               "of the shipped one or one estimated from the files."),
) -> None:
    """Link people across extracts and print ``file,row,shared_id,score`` (row 1 = first data row).

    A dry run: ids are fresh per run and nothing is stored. Values are hashed under a throw-away key
    before matching, so no name or date reaches the scratch database.
    """
    import csv
    import sys

    from exchange.identity.batch import MappingError, check_fields, link_files, parse_columns

    try:
        mappings = _mappings(columns, files, parse_columns, check_fields)
        missing = [f for f in files if not f.is_file()]
        if missing:
            fail(f"{missing[0]}: no such file")
        names = [f.name for f in files]
        if len(set(names)) != len(names):
            fail("two files share a name; rename one (the output names files by name)")
        links, bad = link_files(files, mappings, threshold=threshold,
                                model=_read_model(model) if model else None)
    except MappingError as error:
        fail(f"{error}; fix: map fields to existing header columns")
    handle = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        writer = csv.writer(handle)
        writer.writerow(["file", "row", "shared_id", "score"])
        for item in links:
            writer.writerow([item.file, item.row, item.shared_id,
                             "" if item.score is None else f"{item.score:.4f}"])
    finally:
        if out:
            handle.close()
    people = len({item.shared_id for item in links if item.shared_id})
    readable = sum(1 for item in links if item.shared_id)
    typer.echo(f"{readable} rows, {people} people", err=True)
    for name, rows in bad.items():
        typer.echo(f"{name}: rows {', '.join(map(str, rows))} have the wrong number of cells; "
                   "left unlinked (empty shared_id)", err=True)


@identity_app.command("train")
def train(
    files: list[Path] = typer.Argument(..., help="CSV extracts to estimate the model from (the more rows the "
                                       "better; tens of thousands are typical)."),
    columns: str = typer.Option(..., "--columns", help="As for `identity link`: FIELD=COLUMN,... or a YAML file."),
    out: Path = typer.Option(..., "--out", help="Write the model here (JSON); point identity.model at it."),
    backend: str = typer.Option("duckdb", "--backend", help="duckdb (in-process) or spark (needs pyspark and "
                                "Java)."),
    max_pairs: float = typer.Option(2e6, "--max-pairs", min=1e3, help="Random pairs sampled to estimate u."),
    seed: int = typer.Option(42, "--seed", help="Seed of the random sampling (same files, same model)."),
) -> None:
    """Estimate the matching model (Fellegi-Sunter m and u) from your own extracts with Splink; no labels.

    Values are hashed under a throw-away key before they reach the engine, as in `identity link`. The
    model file holds probabilities and the comparison rules, no values.
    """
    import json

    from exchange.identity.batch import MappingError, check_fields, parse_columns, train_files
    from exchange.identity.model import BackendUnavailableError

    try:
        mappings = _mappings(columns, files, parse_columns, check_fields)
        missing = [f for f in files if not f.is_file()]
        if missing:
            fail(f"{missing[0]}: no such file")
        if len({f.name for f in files}) != len(files):
            fail("two files share a name; rename one")
        model, rows, bad = train_files(files, mappings, backend=backend, max_pairs=max_pairs, seed=seed)
    except BackendUnavailableError as error:
        fail(str(error))
    except MappingError as error:
        fail(f"{error}; fix: map fields to existing header columns")
    except ValueError as error:
        fail(f"cannot train: {error}")
    out.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    typer.echo(f"model estimated from {rows} rows written to {out}", err=True)
    for name, numbers in bad.items():
        typer.echo(f"{name}: rows {', '.join(map(str, numbers))} have the wrong number of cells; left out",
                   err=True)


def _read_model(path: Path) -> dict:
    """A model file, checked; a clear failure otherwise."""
    from exchange.identity.model import load_model

    try:
        return load_model(path.read_text(encoding="utf-8"))
    except OSError as error:
        fail(f"{path}: cannot read the model ({error.strerror})")
    except ValueError as error:
        fail(f"{path}: {error}; fix: use a file written by `niem-exchange identity train`")


def _mappings(columns: str, files: list[Path], parse_columns, check_fields) -> dict[str, dict[str, str]]:
    """One field -> column mapping per file name, from ``--columns`` text or a YAML file."""
    from exchange.identity.batch import MappingError

    path = Path(columns)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        mapping = parse_columns(columns)
        return {f.name: mapping for f in files}
    import yaml

    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not raw:
        raise MappingError(f"{path.name}: must be a mapping")
    if all(isinstance(v, str) for v in raw.values()):
        mapping = check_fields(raw)
        return {f.name: mapping for f in files}
    out = {}
    for f in files:
        if not isinstance(raw.get(f.name), dict):
            raise MappingError(f"{path.name}: no mapping for file {f.name}")
        out[f.name] = check_fields(raw[f.name])
    return out


def _engine(config: Path | None, home: Path):
    from exchange.config import load_config, resolve_url
    from exchange.state.db import open_engine

    cfg = load_config(config or demo_config())
    return open_engine(resolve_url(home.resolve(), cfg.state_url)), cfg.name


@review_app.command("list")
def review_list(
    config: Path = CONFIG,
    home: Path = HOME,
    status: str = typer.Option("open", "--status", help="open, accepted, rejected or all."),
) -> None:
    """List review items: both records' references, ids, probability and which levels agreed (no values)."""
    from exchange.state.person_curation import reviews

    engine, name = _engine(config, home)
    items = reviews(engine, name, status)
    for item in items:
        agreement = ", ".join(f"{k}: {v}" for k, v in item.agreement.items() if v != "unknown")
        typer.echo(f"#{item.id} [{item.status}] {item.record} ({item.shared_id}) ~ {item.candidate} "
                   f"({item.candidate_shared_id}) p={item.probability:.3f}; {item.reason}\n    {agreement}")
    if not items:
        typer.echo("no review items")


@review_app.command("accept")
def review_accept(review_id: int = typer.Argument(..., help="Review item id."), by: str = ACTOR,
                  config: Path = CONFIG, home: Path = HOME) -> None:
    """Same person: merge the record's provisional id into the candidate's; print records to re-issue."""
    from datetime import datetime, timezone

    from exchange.state.person_curation import UnknownReviewError, accept

    engine, _ = _engine(config, home)
    try:
        moved = accept(engine, review_id, by, datetime.now(timezone.utc))
    except UnknownReviewError as error:
        fail(str(error), code=1)
    _print_moved(engine, moved)
    typer.echo(f"review {review_id} accepted")


def _print_moved(engine, moved) -> None:
    """Each moved record, and what happens to the messages sent for it under its old id."""
    from exchange.state.reissue import affected

    for m in moved:
        typer.echo(f"{m.system}:{m.record_id} {m.old} -> {m.new}")
        for item in affected(engine, [m]):
            if item.window_key is None:
                what = "no source window recorded: re-issue by hand"
            elif item.reopened:
                what = f"its window is re-opened: the next run of {item.exchange} re-issues it under {m.new}"
            else:
                what = "re-issued already"
            typer.echo(f"    re-issue message {item.message_id} to {item.recipient} ({item.state}); {what}")


@review_app.command("reject")
def review_reject(review_id: int = typer.Argument(..., help="Review item id."), by: str = ACTOR,
                  config: Path = CONFIG, home: Path = HOME) -> None:
    """Different people: keep both ids; the pair is not queued again."""
    from datetime import datetime, timezone

    from exchange.state.person_curation import UnknownReviewError, reject

    engine, _ = _engine(config, home)
    try:
        reject(engine, review_id, by, datetime.now(timezone.utc))
    except UnknownReviewError as error:
        fail(str(error), code=1)
    typer.echo(f"review {review_id} rejected")


@identity_app.command("merge")
def merge_ids(
    keep: str = typer.Argument(..., help="The shared id that stays."),
    retire: str = typer.Argument(..., help="The shared id whose records move to KEEP."),
    by: str = ACTOR,
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the trail; no PHI)."),
    config: Path = CONFIG,
    home: Path = HOME,
) -> None:
    """Two ids are one person: move RETIRE's records to KEEP, with a trail entry per record."""
    from datetime import datetime, timezone

    from exchange.state.person_curation import merge

    engine, _ = _engine(config, home)
    moved = merge(engine, keep, retire, by, reason, datetime.now(timezone.utc))
    if not moved:
        fail(f"{retire} has no records to move to {keep}", code=1)
    _print_moved(engine, moved)


@identity_app.command("split")
def split_id(
    shared_id: str = typer.Argument(..., help="The shared id that holds two people."),
    record: list[str] = typer.Option(..., "--record", help="SYSTEM:RECORD_ID to move to a new id (repeat)."),
    by: str = ACTOR,
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the trail; no PHI)."),
    config: Path = CONFIG,
    home: Path = HOME,
) -> None:
    """One id holds two people: move the given records to a new id, with a trail entry per record."""
    from datetime import datetime, timezone

    from exchange.state.person_curation import split

    engine, _ = _engine(config, home)
    records = [tuple(r.split(":", 1)) for r in record]
    if any(len(r) != 2 for r in records):
        fail("--record must be SYSTEM:RECORD_ID")
    try:
        new, moved = split(engine, shared_id, records, by, reason, datetime.now(timezone.utc))
    except ValueError as error:
        fail(str(error), code=1)
    typer.echo(f"new id {new}")
    _print_moved(engine, moved)
