"""Config errors name the file, the key and the fix, and stop before any I/O."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exchange.config import load_config
from transforms.model import ConfigError


def _write(tmp_path: Path, demo_config: Path, change) -> Path:
    data = yaml.safe_load(demo_config.read_text())
    change(data)
    path = tmp_path / "exchange.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_demo_config_loads(demo_config):
    cfg = load_config(demo_config)
    assert cfg.name == "demo-booking" and [r.id for r in cfg.recipients] == ["county-bh", "state-bh"]


@pytest.mark.parametrize(
    ("change", "key", "fix"),
    [
        (lambda d: d["recipients"][0].pop("legal_basis"), "recipients.0.legal_basis", "add this key"),
        (lambda d: d.update(recipents=[]), "recipents", "remove it or check its spelling"),
        (lambda d: d["source"].update(kind="ftp"), "source.kind", "allowed values"),
        (lambda d: d["recipients"].append(dict(d["recipients"][0])), "recipients", "allowed values"),
    ],
)
def test_bad_config_names_file_key_and_fix(tmp_path, demo_config, change, key, fix):
    path = _write(tmp_path, demo_config, change)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path) and caught.value.key == key and fix in caught.value.fix


def test_missing_certificate_is_a_config_error_with_the_fix(tmp_path, demo_config):
    from exchange.runtime import open_exchange

    with pytest.raises(ConfigError) as caught:
        open_exchange(demo_config, tmp_path)
    assert caught.value.key == "signing" and "dev-pki" in caught.value.fix


def test_cli_prints_config_errors_without_a_traceback(tmp_path, demo_config):
    import subprocess
    import sys

    path = _write(tmp_path, demo_config, lambda d: d.pop("sender"))
    result = subprocess.run([sys.executable, "-m", "exchange.cli", "run", str(path), "--home", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "sender" in result.stderr and "Traceback" not in result.stderr


def test_config_offers_exactly_the_message_types_the_mapping_can_build():
    from typing import get_args

    from exchange.config import MessageType
    from transforms.mapping import BUILDERS

    assert set(get_args(MessageType)) == set(BUILDERS)
