"""Shared pieces of the config models: strict frozen models and the slug type for names and ids."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
"""Lower-case letters, digits, ``-`` and ``_``: safe in file names, task ids and ledger entries."""


class Strict(BaseModel):
    """Unknown keys are errors (a misspelt key must not be silently ignored); configs are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
