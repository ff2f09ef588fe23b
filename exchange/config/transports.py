"""Transport configs, one model per delivery kind; ``TransportConfig`` is their union, told apart by ``kind``."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from exchange.config.base import Strict


class OutboxTransportConfig(Strict):
    """The embedded default transport: files in a local directory with a SHA-256 manifest."""

    kind: Literal["outbox"] = Field(description="Transport adapter: local outbox directory.")
    path: str = Field(description="Directory the recipient's messages are written to.")


TransportConfig = Annotated[OutboxTransportConfig, Field(discriminator="kind")]
"""Every transport kind a recipient may use (grows a ``Union[...]`` as transports are added)."""
