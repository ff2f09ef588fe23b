"""``niem-exchange ledger ...``: the accounting-of-disclosures ledger."""
from __future__ import annotations

from pathlib import Path

import typer

from exchange.commands.common import HOME, demo_config, fail

ledger_app = typer.Typer(help="The accounting-of-disclosures ledger.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``ledger`` group to the root CLI."""
    app.add_typer(ledger_app, name="ledger")


@ledger_app.command("verify")
def ledger_verify(
    config: Path = typer.Option(None, "--config", help="Exchange YAML (default: the demo exchange)."),
    home: Path = HOME,
) -> None:
    """Recompute the ledger's hash chain; exit 1 and name the first entry that was edited or deleted."""
    from exchange.config import load_config, resolve_url
    from exchange.state.db import open_engine
    from exchange.state.ledger import verify_chain

    cfg = load_config(config or demo_config())
    report = verify_chain(open_engine(resolve_url(home.resolve(), cfg.state_url)))
    if not report.ok:
        fail(f"ledger entry {report.broken_at} {report.reason}", code=1)
    typer.echo(f"ledger intact: {report.entries} entries")


@ledger_app.command("account")
def ledger_account(
    person: str = typer.Argument(..., help="The person's shared identifier (NXP-...)."),
    since: str = typer.Option(None, "--since", help="First day (YYYY-MM-DD); default: six years ago."),
    until: str = typer.Option(None, "--until", help="Last day (YYYY-MM-DD); default: today."),
    show_exempt: bool = typer.Option(False, "--show-exempt",
                                     help="Also list, apart, disclosures exempt from the accounting."),
    config: Path = typer.Option(None, "--config", help="Exchange YAML (default: the demo exchange)."),
    home: Path = HOME,
) -> None:
    """Print an accounting of disclosures for one person (45 CFR 164.528); exempt ones left out."""
    from datetime import date, datetime, time, timedelta, timezone

    from rich.console import Console
    from rich.table import Table

    from exchange.config import load_config, resolve_url
    from exchange.state.db import open_engine
    from exchange.state.ledger import account

    def day(text: str | None, default: date, end: bool) -> datetime:
        try:
            value = date.fromisoformat(text) if text else default
        except ValueError:
            fail(f"{'--until' if end else '--since'}: not a date; fix: write YYYY-MM-DD")
        return datetime.combine(value, time.max if end else time.min, tzinfo=timezone.utc)

    today = datetime.now(timezone.utc).date()
    start = day(since, today - timedelta(days=6 * 365 + 2), end=False)
    stop = day(until, today, end=True)
    cfg = load_config(config or demo_config())
    result = account(open_engine(resolve_url(home.resolve(), cfg.state_url)), person, start, stop)
    console = Console()
    table = Table("date", "recipient", "what was disclosed", "purpose", "legal basis", "message",
                  title=f"Accounting of disclosures for {person}, {start.date()} to {stop.date()}")
    for d in result.listed:
        table.add_row(d.at.date().isoformat(), d.recipient_name, "; ".join(d.categories), d.purpose,
                      d.legal_basis, d.message_id)
    console.print(table)
    console.print(f"{len(result.listed)} disclosures listed; {len(result.exempt)} exempt from the accounting "
                  "(45 CFR 164.528(a)(1)) not listed", highlight=False)
    if show_exempt and result.exempt:
        exempt = Table("date", "recipient", "what was disclosed", "exemption", "message",
                       title="Exempt from the accounting (not for the individual; for the privacy officer)")
        for d in result.exempt:
            exempt.add_row(d.at.date().isoformat(), d.recipient_name, "; ".join(d.categories),
                           d.accounting_exempt, d.message_id)
        console.print(exempt)
    if not result.chain.ok:
        fail(f"ledger entry {result.chain.broken_at} {result.chain.reason}: this accounting may be incomplete",
             code=1)
