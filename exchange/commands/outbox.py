"""``niem-exchange outbox list|retry|purge``: look into the outbox, requeue what failed, apply retention."""
from __future__ import annotations

from pathlib import Path

import typer

from exchange.commands.common import HOME, demo_config, fail

outbox_app = typer.Typer(help="The outbox: message states, retries, retention.", no_args_is_help=True)

CONFIG = typer.Option(None, "--config", help="Exchange YAML (default: the demo exchange).")


def register(app: typer.Typer) -> None:
    """Add the ``outbox`` group to the root CLI."""
    app.add_typer(outbox_app, name="outbox")


def _open(config: Path | None, home: Path):
    """The exchange's Outbox (state database only: no keys, no transports are opened)."""
    from exchange.config import load_config, resolve_url
    from exchange.state.db import open_engine
    from exchange.state.outbox import Outbox

    cfg = load_config(config or demo_config())
    return Outbox(open_engine(resolve_url(home.resolve(), cfg.state_url)), cfg.name)


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


@outbox_app.command("list")
def outbox_list(
    config: Path = CONFIG,
    home: Path = HOME,
    state: str = typer.Option(None, "--state", help="Only this state (queued, sending, failed, dead-letter, "
                                                    "delivered, superseded: replaced after a merge or split)."),
    recipient: str = typer.Option(None, "--recipient", help="Only this recipient id."),
    limit: int = typer.Option(200, "--limit", min=1, help="Show at most this many messages."),
) -> None:
    """List messages with their state, attempts, next attempt and last error (never payloads), then counts."""
    from rich.console import Console
    from rich.table import Table

    box = _open(config, home)
    table = Table("message id", "recipient", "state", "attempts", "next attempt", "last error", "payload")
    for e in box.entries(state=state, recipient=recipient, limit=limit):
        next_at = e.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if e.next_attempt_at else ""
        table.add_row(e.message_id, e.recipient, e.state, str(e.attempts), next_at, e.last_error or "",
                      "kept" if e.payload_kept else "purged (hash kept)")
    console = Console(width=200)
    console.print(table)
    counts = box.counts()
    console.print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "outbox empty", highlight=False)


@outbox_app.command("retry")
def outbox_retry(
    message_ids: list[str] = typer.Argument(None, help="Message ids to requeue (default: by --state)."),
    config: Path = CONFIG,
    home: Path = HOME,
    state: list[str] = typer.Option(None, "--state",
                                    help="Requeue every message in this state (repeatable; default: "
                                         "failed and dead-letter)."),
    recipient: str = typer.Option(None, "--recipient", help="Only this recipient id."),
) -> None:
    """Put failed or dead-lettered messages back in the queue now, with a fresh attempt budget."""
    from exchange.state.outbox import State

    allowed = {State.FAILED.value, State.DEAD.value, State.SENDING.value, State.QUEUED.value}
    states = state or ([] if message_ids else [State.FAILED.value, State.DEAD.value])
    bad = [s for s in states if s not in allowed]
    if bad:
        fail(f"--state {bad[0]!r} cannot be retried; use one of {', '.join(sorted(allowed))}")
    count = _open(config, home).retry(_now(), message_ids=message_ids or (), states=states, recipient=recipient)
    typer.echo(f"requeued {count} message(s)")


@outbox_app.command("purge")
def outbox_purge(
    config: Path = CONFIG,
    home: Path = HOME,
    days: int = typer.Option(30, "--days", min=0, help="Drop payloads delivered more than this many days ago."),
) -> None:
    """Apply retention: drop payloads of messages delivered over N days ago, keep every row and its SHA-256.

    Queued, sending, failed and dead-letter messages are never purged.
    """
    from datetime import timedelta

    count = _open(config, home).purge(_now(), timedelta(days=days))
    typer.echo(f"purged {count} delivered payload(s); their hashes stay in the outbox and the ledger")
