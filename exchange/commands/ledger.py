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
