"""Source configs, one model per adapter kind; ``SourceConfig`` is their union, told apart by ``kind``."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from exchange.config.base import Slug, Strict


class JailCsvSourceConfig(Strict):
    """A JMS file drop: a directory of bookings (and booking charges) CSV or pipe-delimited files."""

    kind: Literal["jail_csv"] = Field(description="Source adapter: a jail CSV file drop.")
    path: str = Field(description="Directory of the drop, relative to the exchange home.")
    system: Slug = Field("jail", description="Name of the source system in crosswalks and references.")
    columns: dict[str, str] = Field(default_factory=dict, description="Our field name -> the county's column.")
    delimiter: Literal[",", "|"] | None = Field(None, description="Field delimiter; sniffed when absent.")


SourceConfig = Annotated[JailCsvSourceConfig, Field(discriminator="kind")]
"""Every source kind an exchange YAML may name (grows a ``Union[...]`` as adapters are added)."""
