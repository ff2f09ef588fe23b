"""``niem-exchange certs ...``: certificates and keys."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import typer

certs_app = typer.Typer(help="Certificates and keys.", no_args_is_help=True)
DEMO_RECIPIENTS = ("county-bh", "state-bh")


def register(app: typer.Typer) -> None:
    """Add the ``certs`` group to the root CLI."""
    app.add_typer(certs_app, name="certs")


@certs_app.command("dev-pki")
def dev_pki(
    directory: Path = typer.Option(Path("certs/dev"), "--dir", help="Where to write the dev PKI."),
    recipient: list[str] = typer.Option(list(DEMO_RECIPIENTS), "--recipient", help="Recipient names."),
    organization: str = typer.Option("Example County Sheriff's Office", help="Our organization."),
) -> None:
    """Mint a development CA, our signing certificate and demo recipients' certificates (never commit them)."""
    from exchange.security import mint_dev_pki

    pki = mint_dev_pki(directory, organization=organization, recipients=recipient,
                       now=datetime.now(timezone.utc))
    typer.echo(f"{'minted' if pki.minted else 'kept existing'} dev PKI in {directory}")
