"""``niem-exchange iepd ...``: validate messages against the IEPD, build the IEPD zip."""
from __future__ import annotations

from pathlib import Path

import typer

iepd_app = typer.Typer(help="The IEPD: validate messages, build the package.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``iepd`` group to the root CLI."""
    app.add_typer(iepd_app, name="iepd")


@iepd_app.command("validate")
def validate(files: list[Path] = typer.Argument(..., help="Plaintext IEPD messages (any of the six types).")) -> None:
    """Check each message against its XSD and the Schematron rules; one line per issue, exit 1 if any."""
    from lxml import etree

    from niem_iepd import safexml, validator

    bad = 0
    for path in files:
        try:
            issues = validator.validate(safexml.parse(path.read_bytes()))
        except (OSError, etree.XMLSyntaxError, safexml.UnsafeXMLError) as error:
            # Neither a syntax error nor a refusal quotes the document: safe to print.
            typer.echo(f"{path}: not checked: {type(error).__name__}: {error}")
            bad += 1
            continue
        for issue in issues:
            typer.echo(f"{path}:{issue.line or '-'}: [{issue.rule}] {issue.path}: {issue.message}")
        bad += bool(issues)
        if not issues:
            typer.echo(f"{path}: valid")
    typer.echo(f"{len(files) - bad} of {len(files)} valid")
    raise typer.Exit(1 if bad else 0)


@iepd_app.command("build")
def build(out: Path = typer.Option(Path("var/iepd"), "--out", help="Directory to write the zip into.")) -> None:
    """Write the IEPD zip (schemas, catalogs, Schematron, samples, docs, change log, README, SHA256SUMS)."""
    import hashlib
    import os

    from niem_iepd import packager

    data = packager.build_package()
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{packager.package_name()}.zip"
    temporary = target.with_suffix(".zip.part")
    with temporary.open("wb") as handle:  # write, fsync, rename: a reader never sees half a zip
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(target)
    typer.echo(f"wrote {target} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")
