"""Fixtures for the attack corpus: one kit of keys and a genuine message per session (see attack_kit.py)."""
from __future__ import annotations

import pytest

from attack_kit import Kit, make_kit


@pytest.fixture(scope="session")
def kit(tmp_path_factory) -> Kit:
    """Keys and certificates for the whole attack corpus, minted once per session."""
    return make_kit(tmp_path_factory.mktemp("attack-kit"))
