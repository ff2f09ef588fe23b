"""``niem-exchange sources check KIND PATH-OR-URL``: try a source export before scheduling it.

Reads the whole source from the beginning (no cursor, no state database, nothing queued or sent) and prints
the records it would produce counted by record type, and the rows it would quarantine counted by reason
(field and reason; never a value).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer

from exchange.commands.common import fail

sources_app = typer.Typer(help="Source adapters: try an export before scheduling it.", no_args_is_help=True)

KINDS = ("fhir-bundle", "fhir-ndjson", "fhir-rest", "hl7v2", "jail-csv", "rms-sql", "nibrs-flat", "nibrs-xml")
"""Source kinds ``sources check`` can read."""


def register(app: typer.Typer) -> None:
    """Add the ``sources`` group to the root CLI."""
    app.add_typer(sources_app, name="sources")


@sources_app.command("check")
def check(
    kind: str = typer.Argument(..., help="One of: " + ", ".join(KINDS)),
    location: str = typer.Argument(..., metavar="PATH-OR-URL", help="File, directory, database URL or FHIR base URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
    table: str = typer.Option("", help="rms-sql: table or view name."),
    record_kind: str = typer.Option("crisis_contact", help="rms-sql: crisis_contact or arrest."),
    column: list[str] = typer.Option([], help="rms-sql / jail-csv: OUR_FIELD=THEIR_COLUMN (repeatable)."),
    timezone_name: str = typer.Option("", "--timezone", help="rms-sql / jail-csv / hl7v2: IANA zone of naive times."),
    token_url: str = typer.Option("", help="fhir-rest: SMART token endpoint (with --client-id, --private-key)."),
    client_id: str = typer.Option("", help="fhir-rest: SMART client id."),
    private_key: Path | None = typer.Option(None, help="fhir-rest: PEM private key of the client."),
    key_id: str = typer.Option("", help="fhir-rest: the key's kid."),
    batch: int = typer.Option(500, min=1, help="Records per window, as a scheduled run would use."),
) -> None:
    """Read a source without sending anything; count the records it yields and the rows it quarantines."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from transforms.model import NiemExchangeError, Rejected

    if kind not in KINDS:
        fail(f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")
    columns = {}
    for pair in column:
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            fail(f"--column {pair!r}: expected OUR_FIELD=THEIR_COLUMN")
        columns[ours.strip()] = theirs.strip()
    zone = None
    if timezone_name:
        try:
            zone = ZoneInfo(timezone_name)
        except (ZoneInfoNotFoundError, ValueError):
            fail(f"--timezone {timezone_name!r} is not a known IANA time zone")
    now = datetime.now(timezone.utc)
    records: Counter[str] = Counter()
    quarantined: Counter[str] = Counter()
    windows = 0
    try:
        source = _open(kind, location, today=now.date(), table=table, record_kind=record_kind, columns=columns,
                       zone=zone, token_url=token_url, client_id=client_id, private_key=private_key,
                       key_id=key_id)
        for window in source.plan(None, batch):
            windows += 1
            for item in source.read(window):
                if isinstance(item, Rejected):
                    quarantined[f"{item.error.field}: {item.error.reason}"] += 1
                else:
                    records[type(item).__name__] += 1
    except NiemExchangeError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps({"kind": kind, "windows": windows, "records": dict(sorted(records.items())),
                               "quarantined": dict(quarantined.most_common())}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"{kind}: {sum(records.values())} record(s) in {windows} window(s), "
                  f"{sum(quarantined.values())} quarantined", highlight=False)
    if records:
        produced = Table("record type", "count")
        for name, count in sorted(records.items()):
            produced.add_row(name, str(count))
        console.print(produced)
    if quarantined:
        refused = Table("quarantined: field: reason", "count")
        for reason, count in quarantined.most_common():
            refused.add_row(reason, str(count))
        console.print(refused)


def _open(kind: str, location: str, *, today, table: str, record_kind: str, columns: dict[str, str], zone,  # noqa: ANN001
          token_url: str, client_id: str, private_key: Path | None, key_id: str):  # noqa: ANN202 - a Source
    """The adapter of ``kind`` reading ``location``, built the way the wiring would."""
    if kind == "jail-csv":
        from adapters.sources.jail_csv import JailCsvSource

        if not Path(location).is_dir():
            fail(f"{location}: not a directory")
        return JailCsvSource(Path(location), columns=columns or None, today=today, default_tz=zone)
    if kind == "rms-sql":
        from adapters.sources.rms_sql import RmsSqlSource

        if not table:
            fail("rms-sql needs --table")
        url = location if "://" in location else f"sqlite:///{Path(location).resolve()}"
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            fail(f"{location}: no such SQLite database")
        return RmsSqlSource(url, table_name=table, record_kind=record_kind, today=today,  # type: ignore[arg-type]
                            columns=columns or None, default_tz=zone)
    if kind in ("fhir-bundle", "fhir-ndjson"):
        from adapters.sources.fhir import FhirBundleSource, FhirNdjsonSource

        if not Path(location).exists():
            fail(f"{location}: does not exist")
        if kind == "fhir-bundle":
            return FhirBundleSource(Path(location), today=today)
        return FhirNdjsonSource(Path(location), today=today)
    if kind == "fhir-rest":
        from datetime import timedelta

        from adapters.sources.fhir_rest import FhirRestSource, SmartBackendAuth

        auth = None
        if token_url or client_id or private_key:
            if not (token_url and client_id and private_key and key_id):
                fail("SMART auth needs --token-url, --client-id, --private-key and --key-id together")
            auth = SmartBackendAuth(token_url, client_id, private_key.read_bytes(), key_id=key_id)
        return FhirRestSource(location, today=today, auth=auth, lag=timedelta(0))
    if kind == "hl7v2":
        from adapters.sources.hl7v2 import Hl7v2FileSource

        if not Path(location).exists():
            fail(f"{location}: does not exist")
        return Hl7v2FileSource(Path(location), today=today, default_tz=zone)
    if kind in ("nibrs-flat", "nibrs-xml"):
        from adapters.sources.nibrs import NibrsFlatFileSource, NibrsXmlSource

        if not Path(location).exists():
            fail(f"{location}: does not exist")
        return NibrsFlatFileSource(Path(location)) if kind == "nibrs-flat" else NibrsXmlSource(Path(location))
    fail(f"{kind}: this source kind is not available yet")
    raise AssertionError  # fail() exits
