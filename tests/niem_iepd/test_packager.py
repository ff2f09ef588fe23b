"""The IEPD zip as an agency receives it: unpacked, it checks its own checksums with sha256sum and its
samples with xmllint alone (no project code); its MPD catalog is valid MPD 3.0.1 and names every file."""
from __future__ import annotations

import csv
import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from niem_iepd import packager

REPO = Path(__file__).resolve().parents[2]
MPD_XSD = REPO.parent / "shared/niem/catalog/mpd-3.0.1/mpd-catalog-3.0.xsd"
C = "http://reference.niem.gov/niem/resource/mpd/catalog/3.0/"
S3 = "http://release.niem.gov/niem/structures/3.0/"


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory) -> Path:
    """The zip from build_package(), extracted; returns its top folder."""
    target = tmp_path_factory.mktemp("iepd")
    with zipfile.ZipFile(io.BytesIO(packager.build_package())) as archive:
        assert all(not name.startswith("/") and ".." not in name for name in archive.namelist())
        archive.extractall(target)
    return target / packager.package_name()


def catalog(unpacked: Path) -> etree._Element:
    return etree.parse(str(unpacked / "mpd-catalog.xml"), etree.XMLParser(no_network=True)).getroot()


def test_build_is_reproducible():
    assert packager.build_package() == packager.build_package()


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum not installed")
def test_checksums_verify_with_sha256sum(unpacked):
    result = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=unpacked, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = {line.split("  ", 1)[1] for line in (unpacked / "SHA256SUMS").read_text().splitlines()}
    on_disk = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()}
    assert listed == on_disk - {"SHA256SUMS"}


def test_zip_holds_what_an_iepd_must(unpacked):
    for required in ("mpd-catalog.xml", "README.md", "CHANGELOG.md", "schemas/xml-catalog.xml",
                     "schematron/niem-exchange.sch", "samples/manifest.csv", "SHA256SUMS"):
        assert (unpacked / required).is_file(), required
    readme = (unpacked / "README.md").read_text()
    assert "Mapping tables" in readme and "nx:CrisisDispositionCode" in readme and "CC BY 4.0" in readme


def test_mpd_catalog_names_every_file_and_each_exists(unpacked):
    named = {node.get(f"{{{C}}}pathURI") for node in catalog(unpacked).iter() if node.get(f"{{{C}}}pathURI")}
    assert all((unpacked / path).is_file() for path in named), sorted(p for p in named if not (unpacked / p).is_file())
    files = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()}
    assert files - named == {"mpd-catalog.xml", "SHA256SUMS"}


@pytest.mark.skipif(not MPD_XSD.is_file(), reason="MPD 3.0.1 catalog schema not in ../shared")
def test_mpd_catalog_is_valid_mpd_3_0_1(unpacked):
    schema = etree.XMLSchema(etree.parse(str(MPD_XSD), etree.XMLParser(no_network=True)))
    assert schema.validate(etree.parse(str(unpacked / "mpd-catalog.xml"))), str(schema.error_log)


def _xmllint(unpacked: Path, schema: str, sample: str) -> subprocess.CompletedProcess:
    return subprocess.run(["xmllint", "--noout", "--nonet", "--schema", schema, sample],
                          cwd=unpacked, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("xmllint") is None, reason="xmllint not installed")
def test_unpacked_samples_check_with_xmllint_alone(unpacked):
    # Which schema checks which sample comes from the MPD catalog and the manifest, as a receiver reads them.
    schema_of = {}
    valid_samples = []
    for target in catalog(unpacked).iter(f"{{{C}}}IEPConformanceTarget"):
        schema = target.find(f"{{{C}}}XMLSchemaValid/{{{C}}}XMLSchemaDocument").get(f"{{{C}}}pathURI")
        schema_of[target.get(f"{{{S3}}}id")] = schema
        valid_samples += [(schema, s.get(f"{{{C}}}pathURI")) for s in target.iter(f"{{{C}}}IEPSampleXMLDocument")]
    assert len(schema_of) == 6 and len(valid_samples) >= 6
    for schema, sample in valid_samples:
        result = _xmllint(unpacked, schema, sample)
        assert result.returncode == 0, result.stderr
    with (unpacked / "samples/manifest.csv").open(newline="") as handle:
        invalid = [row for row in csv.DictReader(handle) if row["expect"] == "invalid"]
    assert any("XSD" in row["rules"].split() for row in invalid)
    for row in invalid:
        result = _xmllint(unpacked, schema_of[row["message_type"]], f"samples/{row['file']}")
        # Schema errors fail xmllint; business-rule breaches are the Schematron's to catch.
        assert (result.returncode != 0) == ("XSD" in row["rules"].split()), (row["file"], result.stderr)
