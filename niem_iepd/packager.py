"""The IEPD as one zip: schemas, catalogs, Schematron, samples, docs, change log, README, checksums.

:func:`build_package` reads the package's own files and returns the zip as bytes (the caller writes it;
this floor does no other I/O). The zip is reproducible: entries in sorted order, a fixed timestamp and
permissions, so the same IEPD version always gives the same bytes and checksum. Inside, everything sits
under one folder ``niem-exchange-iepd-<version>/`` whose layout is the one ``mpd-catalog.xml`` describes;
``SHA256SUMS`` there checks every other file with ``sha256sum -c SHA256SUMS``.
"""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from niem_iepd.ns import IEPD_VERSION

__all__ = ["PACKAGE_DIR", "build_package", "package_files", "package_name"]

PACKAGE_DIR = Path(__file__).parent.resolve()
#: Every file is stamped with the IEPD's release day, not the build time, so rebuilding changes nothing.
_TIMESTAMP = (2026, 11, 24, 0, 0, 0)
_DOC_ORDER = ("common", "booking-notification", "release-notification", "crisis-contact-report",
              "behavioral-health-alert", "familiar-faces-roster", "program-metrics")


def package_name() -> str:
    """``niem-exchange-iepd-<version>``: the zip's base name and its top folder."""
    return f"niem-exchange-iepd-{IEPD_VERSION}"


def _readme() -> bytes:
    """The IEPD README followed by every mapping table, so the zip's README is complete on its own."""
    parts = [(PACKAGE_DIR / "README.md").read_text(encoding="utf-8").rstrip("\n"), "", "## Mapping tables", ""]
    docs = {path.stem: path for path in (PACKAGE_DIR / "docs").glob("*.md")}
    for stem in (*_DOC_ORDER, *sorted(set(docs) - set(_DOC_ORDER))):
        if stem in docs:
            lines = docs[stem].read_text(encoding="utf-8").rstrip("\n").splitlines()
            # Each document's headings go two levels down, under "Mapping tables".
            parts.extend(f"##{line}" if line.startswith("#") else line for line in lines)
            parts.append("")
    return "\n".join(parts).encode("utf-8")


def package_files() -> dict[str, bytes]:
    """Path inside the IEPD -> content, for every file the zip holds except ``SHA256SUMS``."""
    files: dict[str, bytes] = {
        "mpd-catalog.xml": (PACKAGE_DIR / "mpd-catalog.xml").read_bytes(),
        "README.md": _readme(),
        "CHANGELOG.md": (PACKAGE_DIR / "CHANGELOG.md").read_bytes(),
    }
    for folder, patterns in (("schemas", ("*.xsd", "*.xml")), ("schematron", ("*.sch",)),
                             ("samples", ("*.xml", "*.csv")), ("docs", ("*.md",))):
        for pattern in patterns:
            for path in (PACKAGE_DIR / folder).rglob(pattern):
                files[path.relative_to(PACKAGE_DIR).as_posix()] = path.read_bytes()
    return dict(sorted(files.items()))


def build_package() -> bytes:
    """The IEPD zip (see the module docstring) as bytes."""
    files = package_files()
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items())
    files["SHA256SUMS"] = sums.encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{package_name()}/{name}", date_time=_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()
