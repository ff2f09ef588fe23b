"""Identity-resolution settings of one exchange: where the probabilistic tier links, queues or mints."""
from __future__ import annotations

from pydantic import Field, model_validator

from exchange.config.base import Strict


class IdentityConfig(Strict):
    """Decision thresholds on the match probability of a record's best candidate person.

    At or above ``link_threshold`` the record joins that person; from ``review_threshold`` up it gets a new
    id and a clerical review item (``niem-exchange identity review list``); below, it is a new person.
    A hard conflict (twins' given names, a father's and son's birth dates) never links automatically.
    """

    link_threshold: float = Field(0.99, gt=0, lt=1, description="Link automatically at or above this.")
    review_threshold: float = Field(0.30, gt=0, lt=1, description="Queue for a person at or above this.")
    model: str | None = Field(None, description="Matching model (JSON from `niem-exchange identity train`), "
                              "relative to the exchange home; default: the model shipped with the package.")

    @model_validator(mode="after")
    def _ordered(self) -> "IdentityConfig":
        if self.review_threshold > self.link_threshold:
            raise ValueError("review_threshold must not exceed link_threshold")
        return self
