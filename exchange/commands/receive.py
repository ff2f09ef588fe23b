"""``niem-exchange receive FILE... --key KEY --trust CERT... --out DIR``: the receiving agency's side.

Each file is decrypted, verified against the pinned sender certificates, validated against the IEPD and
checked for replay (see :mod:`exchange.receive`); accepted ones leave ``<message-id>.xml`` and
``<message-id>.receipt.json`` in ``--out``, refused ones leave nothing. One line per file; exit 0 when all
were accepted, 1 when any was refused (the others are still processed), 2 for a usage or key problem.
"""
from __future__ import annotations

import os
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``receive`` command to the root CLI."""
    app.command("receive")(receive)


def receive(
    files: list[Path] = typer.Argument(..., help="Received messages (xenc:EncryptedData documents)."),
    key: Path = typer.Option(..., "--key", help="Our private decryption key (PEM, or PKCS#12 .p12/.pfx)."),
    trust: list[Path] = typer.Option(..., "--trust", help="A pinned sender signing certificate (PEM); "
                                     "repeat to hold the old and the new one during a key rotation."),
    out: Path = typer.Option(..., "--out", help="Where accepted plaintext messages and receipts go."),
    state: Path = typer.Option(None, "--state", help="Replay database (SQLite); default OUT/received.db."),
    passphrase_env: str = typer.Option(None, "--passphrase-env", help="Name of an environment variable "
                                       "holding the key's passphrase (never pass a passphrase as an argument)."),
    passphrase_file: Path = typer.Option(None, "--passphrase-file", help="A file holding the key's passphrase "
                                         "(one line; e.g. a mounted secret)."),
    allow_legacy_cbc: bool = typer.Option(False, "--allow-legacy-cbc", help="Accept AES-CBC/3DES content "
                                          "encryption from a legacy sender (refused by default)."),
    max_bytes: int = typer.Option(None, "--max-bytes", help="Largest message accepted (default 20 MB)."),
) -> None:
    """Decrypt, verify (pinned certificates only), validate and de-duplicate received messages."""
    from exchange.commands.common import fail
    from exchange.receive import Receiver
    from exchange.security._received import MAX_DOCUMENT_BYTES
    from transforms.model.errors import MessageInvalidError, SecurityError

    from exchange.keystore import read_passphrase_file

    passphrase = None
    if passphrase_env and passphrase_file:
        fail("give the passphrase with --passphrase-env or --passphrase-file, not both")
    if passphrase_env:
        value = os.environ.get(passphrase_env)
        if value is None:
            fail(f"--passphrase-env: environment variable {passphrase_env} is not set")
        passphrase = value.encode()
    elif passphrase_file:
        try:
            value = read_passphrase_file(passphrase_file)
        except FileNotFoundError:
            fail(f"--passphrase-file: file {passphrase_file} not found")
        except (OSError, UnicodeDecodeError):
            fail(f"--passphrase-file: file {passphrase_file} cannot be read as UTF-8 text")
        if not value:
            fail(f"--passphrase-file: file {passphrase_file} is empty")
        passphrase = value.encode()
    try:
        receiver = Receiver.open(key=key, trusted=trust, out_dir=out, state=state, passphrase=passphrase,
                                 allow_legacy=allow_legacy_cbc, max_bytes=max_bytes or MAX_DOCUMENT_BYTES)
    except FileNotFoundError as error:
        fail(f"file {error.filename} not found")
    except SecurityError as error:
        fail(str(error))
    refused = 0
    try:
        for path in files:
            try:
                data = path.read_bytes()
                receipt = receiver.receive(data, source=path.name)
            except (SecurityError, MessageInvalidError) as error:
                refused += 1
                typer.echo(f"{path}: REFUSED: {error}", err=True)
                continue
            except OSError as error:
                refused += 1
                typer.echo(f"{path}: REFUSED: cannot read the file ({error.strerror})", err=True)
                continue
            typer.echo(f"{path}: accepted {receipt.message_type} {receipt.message_id} "
                       f"(signer key {receipt.sender_key_id}) -> {receipt.plaintext_path}")
    finally:
        receiver.close()
    raise typer.Exit(1 if refused else 0)
