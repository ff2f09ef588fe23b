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
    passphrase_env: str = typer.Option(None, "--passphrase-env", help="Encrypt the new signing key with the "
                                       "passphrase in this environment variable (never pass it as an argument); "
                                       "the exchange YAML then names it as signing.passphrase_env."),
    pkcs12: bool = typer.Option(False, "--pkcs12", help="Also write signing.p12 (key and certificate) under "
                                "that passphrase."),
    signing_key: str = typer.Option(None, "--signing-key", help="The new signing key: rsa-3072 (the default, "
                                    "RSA-SHA256 signatures) or ec-p256 (ECDSA-SHA256, about fifty times cheaper "
                                    "to sign); for an existing PKI it must match what is there."),
) -> None:
    """Mint a development CA, our signing certificate and demo recipients' certificates (never commit them)."""
    from exchange.security import SigningKeyType, mint_dev_pki

    if signing_key is not None and signing_key not in {t.value for t in SigningKeyType}:
        _fail(f"--signing-key must be one of: {', '.join(t.value for t in SigningKeyType)}")

    passphrase = _passphrase_from(passphrase_env)
    if pkcs12 and passphrase is None:
        _fail("--pkcs12 needs --passphrase-env: a PKCS#12 file is always passphrase-protected")
    pki = mint_dev_pki(directory, organization=organization, recipients=recipient,
                       now=datetime.now(timezone.utc), signing_passphrase=passphrase, pkcs12=pkcs12,
                       signing_key_type=signing_key)
    typer.echo(f"{'minted' if pki.minted else 'kept existing'} dev PKI in {directory}")


@certs_app.command("import")
def import_certificate(
    name: str = typer.Argument(..., help="The recipient's id (the file becomes recipients/NAME.pem)."),
    certificate: Path = typer.Argument(..., help="The recipient's encryption certificate (PEM) they sent you."),
    directory: Path = typer.Option(Path("certs"), "--dir", help="The trust store."),
    expected: str = typer.Option(None, "--fingerprint", help="SHA-256 fingerprint the recipient gave you out of "
                                 "band (`openssl x509 -noout -fingerprint -sha256`); refused if it differs."),
    replace: bool = typer.Option(False, "--replace", help="Replace a different certificate pinned under NAME."),
) -> None:
    """Check a recipient's certificate (RSA >= 2048, key encipherment, valid now) and pin it with its fingerprint."""
    from exchange.commands.common import fail
    from exchange.security.trust_store import import_recipient

    try:
        pinned = import_recipient(directory, name, certificate, now=datetime.now(timezone.utc),
                                  expected_fingerprint=expected, replace=replace)
    except FileNotFoundError as error:
        fail(f"file {error.filename} not found")
    typer.echo(f"pinned {name}: {pinned.path}")
    typer.echo(f"  SHA-256 {pinned.fingerprint}")
    typer.echo(f"  expires {pinned.not_valid_after:%Y-%m-%d}")
    if expected is None:
        typer.echo("  check this fingerprint with the recipient by phone or in person before the first send")


@certs_app.command("list")
def list_certificates(
    directory: Path = typer.Option(Path("certs"), "--dir", help="The trust store (searched recursively)."),
    warn_days: int = typer.Option(30, "--warn-days", help="Warn this many days before a certificate expires."),
) -> None:
    """List every certificate with its key id, fingerprint and expiry; warn ahead, exit 1 if any is unusable."""
    from datetime import timedelta

    from rich.console import Console
    from rich.table import Table

    from exchange.security.trust_store import list_certificates as list_all

    now = datetime.now(timezone.utc)
    statuses = list_all(directory, now=now, warn_before=timedelta(days=warn_days))
    table = Table("file", "subject", "key id", "SHA-256", "expires", "days", "status")
    colours = {"ok": "green", "expires soon": "yellow"}
    for s in statuses:
        expires = f"{s.not_valid_after:%Y-%m-%d}" if s.not_valid_after else "-"
        table.add_row(str(s.path.relative_to(directory)), s.subject, s.key_id, s.fingerprint[:16],
                      expires, "-" if s.days_left is None else str(s.days_left),
                      f"[{colours.get(s.status, 'bold red')}]{s.status}[/]")
    Console(width=160).print(table)
    err = Console(stderr=True, width=160)
    for s in statuses:
        if s.status == "expires soon":
            err.print(f"[yellow]warning:[/] {s.path.relative_to(directory)} expires in {s.days_left} days "
                      f"({s.not_valid_after:%Y-%m-%d}): renew it", highlight=False)
        elif s.failing:
            err.print(f"[bold red]error:[/] {s.path.relative_to(directory)}: {s.status}", highlight=False)
    raise typer.Exit(1 if any(s.failing for s in statuses) else 0)


@certs_app.command("rotate")
def rotate(
    directory: Path = typer.Option(Path("certs/dev"), "--dir", help="Where signing.key/signing.pem live."),
    certificate: Path = typer.Option(None, "--certificate", help="Finish a pending rotation with the "
                                     "certificate your CA issued for signing-next.csr."),
    days: int = typer.Option(365, help="Validity of a certificate issued by the dev CA."),
    passphrase_env: str = typer.Option(None, "--passphrase-env", help="Encrypt the new key with the passphrase "
                                       "in this environment variable."),
) -> None:
    """Rotate our signing key; the old pair moves to previous/ so receivers can hold both during the change."""
    from exchange.security.trust_store import activate_signing_certificate, rotate_signing_key

    if certificate is not None:
        done = activate_signing_certificate(directory, certificate)
    else:
        done = rotate_signing_key(directory, now=datetime.now(timezone.utc), days=days,
                                  passphrase=_passphrase_from(passphrase_env))
    if done.pending_request is not None:
        typer.echo(f"new key written; send {done.pending_request} to your CA, then run "
                   f"`niem-exchange certs rotate --dir {directory} --certificate ISSUED.pem`")
        return
    typer.echo(f"signing key rotated: key id {done.old_key_id} -> {done.new_key_id}")
    typer.echo(f"  new certificate: {done.signing_certificate} (messages now carry ds:KeyName {done.new_key_id})")
    typer.echo(f"  previous:        {done.previous_certificate}")
    typer.echo("  send the new certificate to every receiver; they pin it next to the old one "
               "(`receive --trust old.pem --trust new.pem`) until messages signed with the old key are done")


def _passphrase_from(variable: str | None) -> bytes | None:
    """The passphrase in environment variable ``variable`` (None when no variable is named)."""
    import os

    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        _fail(f"--passphrase-env: environment variable {variable} is not set or empty")
    return value.encode("utf-8")


def _fail(message: str) -> None:
    from exchange.commands.common import fail

    fail(message)
