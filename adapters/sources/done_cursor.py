"""The cursor of file-drop sources: the SHA-256 digests of the files (or units) already fully read.

Shared by the jail CSV, FHIR, HL7 v2 and NIBRS drops so they agree on one format, ``{"done": [...]}``.
"""
from __future__ import annotations

import json
from collections.abc import Set

from transforms.model import PermanentError


def read_done(cursor: str | None, operation: str) -> frozenset[str]:
    """The digests a cursor lists as done; a cursor some other source wrote is a PermanentError."""
    if not cursor:
        return frozenset()
    try:
        done = json.loads(cursor)["done"]
        if isinstance(done, list) and all(isinstance(d, str) for d in done):
            return frozenset(done)
    except (ValueError, KeyError, TypeError):
        pass
    raise PermanentError(operation, "the cursor was not written by this source")


def write_done(done: Set[str]) -> str:
    """The cursor text for a set of done digests (sorted, so equal sets give equal cursors)."""
    return json.dumps({"done": sorted(done)}, separators=(",", ":"))
