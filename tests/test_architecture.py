"""The five floors hold: every import points down, only dags/ imports airflow, the CLI stays light."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    """import-linter checks the layers and forbidden imports declared in pyproject.toml."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), str(REPO / "pyproject.toml")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout


def test_top_level_layout_is_the_architecture():
    for name in ("adapters", "niem_iepd", "transforms", "exchange", "dags", "certs", "tests"):
        assert (REPO / name).is_dir(), name
    assert (REPO / "pyproject.toml").is_file() and (REPO / "README.md").is_file()


def test_cli_help_imports_no_airflow_and_no_heavy_modules():
    """`niem-exchange --help` must start fast: it may not pull in airflow, lxml, xmlsec or SQLAlchemy."""
    code = (
        "import sys, exchange.cli as c\n"
        "try:\n    c.app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'lxml', 'xmlsec', 'sqlalchemy'})\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout and "demo" in result.stdout
    assert result.stdout.strip().endswith("HEAVY="), result.stdout[-200:]


def test_lxml_and_xmlsec_share_one_libxml2():
    """xmlsec's wheel and lxml must be built on the same libxml2, or signing breaks at import or worse."""
    import lxml.etree
    import xmlsec

    assert lxml.etree.LIBXML_VERSION == xmlsec.get_libxml_version()
