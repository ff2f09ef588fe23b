"""``niem-exchange``: run exchanges, mint demo certificates, check the ledger.

Heavy modules (lxml, xmlsec, SQLAlchemy) are imported inside the commands so ``--help`` stays fast; Airflow
is never imported here.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import typer

from exchange.commands import certs, consents, identity, iepd, ledger, outbox, receive, serve, sources
from exchange.commands.certs import DEMO_RECIPIENTS
from exchange.commands.common import HOME, demo_config, fail

app = typer.Typer(help="NIEM message exchange between jail, police and behavioral-health systems.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def run(
    config: Path = typer.Argument(..., help="Exchange YAML."),
    home: Path = HOME,
    workers: int = typer.Option(1, "--workers", min=1, help="Processes for the windows (e.g. one per core)."),
) -> None:
    """Run one exchange once: read, link, map, validate, sign, encrypt, deliver, account."""
    _run(config, home, workers)


@app.command()
def demo(home: Path = HOME) -> None:
    """Mint dev certificates if needed, then run the bundled demo exchange end to end."""
    from exchange.security import mint_dev_pki

    mint_dev_pki(home / "certs/dev", organization="Example County Sheriff's Office",
                 recipients=DEMO_RECIPIENTS, now=datetime.now(timezone.utc))
    _run(demo_config(), home)


class _ProgressObserver:
    """Drive a rich progress bar from the pipeline's hooks."""

    def __init__(self, progress, name: str) -> None:
        self._progress = progress
        self._task = progress.add_task(f"{name}: windows", total=None)

    def planned(self, windows: int) -> None:
        self._progress.update(self._task, total=windows)

    def window_done(self, counts) -> None:
        self._progress.advance(self._task)

    def delivering(self, recipient_id: str) -> None:
        self._progress.update(self._task, description=f"deliver to {recipient_id}")


def _run(config: Path, home: Path, workers: int = 1) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from exchange import pipeline
    from exchange.config import resolve
    from exchange.runtime import open_exchange
    from transforms.model import ConfigError

    console = Console()
    credentials = _environment_credentials(config)
    try:
        ex = open_exchange(config, home, credentials=credentials)
    except ConfigError as error:
        fail(str(error))
    process = None
    if workers > 1:
        from exchange.workers import process_windows

        def process(keys):
            return process_windows(config, home, keys, workers, credentials)
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            summary = pipeline.run(ex, _ProgressObserver(progress, ex.config.name), process)
        table = Table(title=f"exchange {ex.config.name}", show_header=False)
        for label, value in (
            ("records read", summary.read), ("quarantined", summary.quarantined),
            ("already sent earlier", summary.already_sent), ("messages built", summary.enqueued),
            ("messages delivered", summary.delivered), ("delivery failures (will retry)", summary.failed),
            ("dead-lettered", summary.dead),
        ):
            table.add_row(label, str(value))
        console.print(table)
        if summary.quarantined:
            console.print(f"quarantine: `niem-exchange quarantine {config}` lists every row with its reason")
        for recipient in ex.config.recipients:
            if recipient.transport.kind == "outbox":  # remote transports have no local directory to show
                console.print(f"outbox {recipient.id}: {resolve(ex.home, recipient.transport.path) / recipient.id}")
    finally:
        ex.close()


def _environment_credentials(config: Path) -> dict[str, dict[str, str]]:
    """The connections the recipients name, from ``AIRFLOW_CONN_<ID>`` variables (as Airflow would read them)."""
    from exchange.config import load_config
    from exchange.connections import from_environment

    try:
        named = {r.connection for r in load_config(config).recipients if r.connection}
    except Exception:  # noqa: BLE001 (open_exchange reports a bad config with the file, key and fix)
        return {}
    return from_environment(sorted(named))


@app.command()
def quarantine(config: Path = typer.Argument(..., help="Exchange YAML."), home: Path = HOME) -> None:
    """List quarantined records with the field and the reason (never the values)."""
    from rich.console import Console
    from rich.table import Table

    from exchange.config import load_config, resolve_url
    from exchange.state.db import open_engine
    from exchange.state.quarantine import Quarantine

    cfg = load_config(config)
    entries = Quarantine(open_engine(resolve_url(home.resolve(), cfg.state_url)), cfg.name).entries()
    table = Table("record", "field", "reason", "seen")
    for e in entries:
        table.add_row(e.record, e.field, e.reason, str(e.times_seen))
    Console().print(table)


@app.command()
def validate(files: list[Path] = typer.Argument(..., help="Plaintext IEPD messages.")) -> None:
    """Validate messages against the project's IEPD schemas; exit 1 if any is invalid."""
    from niem_iepd import safexml, validator

    bad = 0
    for path in files:
        issues = validator.validate(safexml.parse(path.read_bytes()))
        for issue in issues:
            typer.echo(f"{path}:{issue.line}: {issue.path}: {issue.message}")
        bad += bool(issues)
        if not issues:
            typer.echo(f"{path}: valid")
    raise typer.Exit(1 if bad else 0)


for _group in (certs, consents, identity, iepd, ledger, outbox, receive, serve, sources):
    _group.register(app)


def main() -> None:
    """Console-script entry point: configuration and security refusals print as one clear line, exit 2."""
    from transforms.model.errors import ConfigError, SecurityError

    try:
        app()
    except (ConfigError, SecurityError) as error:
        try:
            fail(str(error))
        except typer.Exit as done:  # outside app() nothing turns typer.Exit into an exit status
            raise SystemExit(done.exit_code) from None


if __name__ == "__main__":
    main()
