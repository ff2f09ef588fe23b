"""``niem-exchange consents ...``: the consent registry (load FHIR Consent / CSV, list, revoke)."""
from __future__ import annotations

from pathlib import Path

import typer

from exchange.commands.common import HOME, demo_config, fail

consents_app = typer.Typer(help="Consents on file (42 CFR 2.31): load, list, revoke.", no_args_is_help=True)

CONFIG = typer.Option(None, "--config", help="Exchange YAML whose state holds the registry (default: the demo).")


def register(app: typer.Typer) -> None:
    """Add the ``consents`` group to the root CLI."""
    app.add_typer(consents_app, name="consents")


def _registry(config: Path | None, home: Path):
    """The exchange's registry (patients matched by a keyed hash under its index secret) and its source system."""
    from exchange.config import load_config, resolve, resolve_url
    from exchange.consent_registry import ConsentRegistry
    from exchange.state.db import open_engine
    from exchange.state.secrets import load_or_create_secret

    cfg = load_config(config or demo_config())
    home = home.resolve()
    registry = ConsentRegistry(open_engine(resolve_url(home, cfg.state_url)),
                               load_or_create_secret(resolve(home, cfg.index_secret)))
    return registry, cfg.source.system


@consents_app.command("load")
def consents_load(
    path: Path = typer.Argument(..., help="A consent CSV, a FHIR Consent JSON (or Bundle), or a directory."),
    config: Path = CONFIG,
    home: Path = HOME,
) -> None:
    """Replace what this file (or directory) gave before; rows set aside are listed with field and reason."""
    if not path.exists():
        fail(f"{path}: does not exist; fix: pass a consent CSV, FHIR JSON file or directory")
    registry, system = _registry(config, home)
    loaded = registry.load(path, system=system)
    for error in loaded.rejected:
        typer.echo(f"set aside: {error}")
    typer.echo(f"{len(loaded.consents)} consents on file from {path}; {len(loaded.rejected)} set aside")
    if loaded.rejected:
        raise typer.Exit(1)


@consents_app.command("list")
def consents_list(
    patient: str = typer.Argument(None, help="Only this EHR patient (e.g. Patient/52); looked up by its keyed hash, "
                                              "never stored or shown."),
    person: str = typer.Option(None, "--person", help="Only this shared person id (NXP-...)."),
    config: Path = CONFIG,
    home: Path = HOME,
) -> None:
    """Consents on file (all, one patient's or one person's): id, shared person id, status, recipients,
    purpose, Part 2, signature, expiry and revocation. The patient reference is not shown: it is not stored."""
    from rich.console import Console
    from rich.table import Table

    registry, _ = _registry(config, home)
    table = Table("consent", "person", "status", "recipients", "purpose", "Part 2", "signed", "expires", "revoked")
    for row in registry.on_file(patient_id=patient, shared_id=person):
        c = row.consent
        table.add_row(c.consent_id, row.shared_id or "(not linked yet)", c.status, ", ".join(c.recipients) or "(none)",
                      c.purpose or "(none)", "yes" if c.part2 else "no", str(c.signed_on or ""),
                      str(c.expires_on or c.expiry_event or ""), str(c.revoked_on or ""))
    Console().print(table)


@consents_app.command("revoke")
def consents_revoke(
    consent_id: str = typer.Argument(..., help="The consent's id."),
    on: str = typer.Option(..., "--on", help="Day the written revocation was received (YYYY-MM-DD)."),
    config: Path = CONFIG,
    home: Path = HOME,
) -> None:
    """Record a revocation; from that day on nothing leaves under the consent (the next run applies it)."""
    from datetime import date

    try:
        day = date.fromisoformat(on)
    except ValueError:
        fail("--on: not a date; fix: write YYYY-MM-DD")
    registry, _ = _registry(config, home)
    if not registry.revoke(consent_id, day):
        fail(f"consent {consent_id}: not on file; fix: `niem-exchange consents list` shows the ids", code=1)
    typer.echo(f"consent {consent_id} revoked on {day.isoformat()}")
