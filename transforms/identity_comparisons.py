"""The probabilistic model's comparisons and blocking keys, as data, plus Fellegi-Sunter scoring.

One spec serves two engines: ``exchange/identity`` turns it into a Splink settings dictionary (SQL levels
on DuckDB, where the m and u probabilities are estimated), and the person index evaluates the same levels
here, in Python, on keyed hashes of the tokens, with the parameters Splink estimated. Each level is a list
of token pairs; a level agrees when any pair is equal and non-empty on both sides. Levels are tried in
order (strongest first); the first that agrees is the comparison's outcome, and "unknown" (the comparison's
``key`` token empty on either side) is neutral.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from transforms.identity_normalise import SET_SEPARATOR


@dataclass(frozen=True, slots=True)
class Level:
    """One agreement level: agrees when any ``(left token, right token)`` pair is equal and non-empty."""

    label: str
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One compared attribute: unknown when ``key`` is empty on either side, else its first agreeing level."""

    name: str
    key: str
    levels: tuple[Level, ...]


def _same(*tokens: str) -> tuple[tuple[str, str], ...]:
    return tuple((t, t) for t in tokens)


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("given_name", "given", (
        Level("exact", _same("given")),
        Level("nickname", _same("given_canon")),
        Level("given/middle swapped", (("given", "middle"), ("middle", "given"),
                                       ("given_canon", "middle_canon"), ("middle_canon", "given_canon"))),
        Level("sounds alike", _same("given_sdx")),
        Level("one edit apart", _same("given_del")),
        Level("same initial", _same("given_init")),
    )),
    Comparison("surname", "sn", (
        Level("exact", _same("sn")),
        Level("shares a part", (("sn1", "sn1"), ("sn1", "sn2"), ("sn2", "sn1"), ("sn2", "sn2"),
                                ("sn", "sn1"), ("sn", "sn2"), ("sn1", "sn"), ("sn2", "sn"))),
        Level("sounds alike", _same("sn_sdx")),
        Level("one edit apart", _same("sn_del")),
        Level("swapped with given name", (("sn", "given"), ("given", "sn"))),
    )),
    Comparison("birth_date", "dob_y", (
        Level("exact", _same("dob")),
        Level("day and month transposed", (("dob", "dob_swap"), ("dob_swap", "dob"))),
        Level("two of three parts", _same("dob_ym", "dob_yd", "dob_md")),
        Level("same year", _same("dob_y")),
    )),
    Comparison("sex", "sex", (Level("exact", _same("sex")),)),
    Comparison("suffix", "suffix", (Level("exact", _same("suffix")),)),
    Comparison("street", "street", (
        Level("exact", _same("street")),
        Level("same street name", _same("street_name")),
    )),
    Comparison("postcode", "postcode", (Level("exact", _same("postcode")),)),
    Comparison("city", "city", (Level("exact", _same("city")),)),
    Comparison("phone", "phone", (Level("exact", _same("phone")),)),
    Comparison("ssn", "ssn", (Level("exact", _same("ssn")), Level("one edit apart", _same("ssn_del")))),
)
"""The comparisons of the probabilistic tier, strongest level first."""

BLOCKING_KEYS: tuple[tuple[str, ...], ...] = (
    ("dob", "given_init"),
    ("dob", "sn_sdx"),
    ("ssn",),
    ("phone",),
    ("sn_sdx", "given_canon"),
    ("sn_sdx", "dob_y"),
    ("given_canon", "dob_ym"),
    ("street", "postcode"),
)
"""Candidate pairs are records that agree exactly on all tokens of at least one of these keys.

Each key keeps blocks small (birth date with an initial or a surname sound; surname sound with the formal
given name or the birth year; formal given name with birth month; address) so cost grows near-linearly
with records; together they let a record with a typo or a change in any one field (a married surname, a
transposed birth date) still meet its match under another key.
"""

UNKNOWN = -1
"""Gamma of a comparison with an unknown side (Splink's null level)."""


def gammas(left: Mapping[str, str], right: Mapping[str, str]) -> dict[str, int]:
    """Each comparison's outcome for a pair: :data:`UNKNOWN`, 0 (no level agrees) or a level number.

    Level numbers follow Splink's convention: the strongest level has the highest number, "else" is 0.
    ``left`` and ``right`` map token names to tokens (clear or keyed hashes, as long as both are alike).
    """
    out: dict[str, int] = {}
    for comparison in COMPARISONS:
        if not left.get(comparison.key) or not right.get(comparison.key):
            out[comparison.name] = UNKNOWN
            continue
        out[comparison.name] = 0
        for rank, level in enumerate(comparison.levels):
            if any(_agree(left.get(a), right.get(b), a) for a, b in level.pairs):
                out[comparison.name] = len(comparison.levels) - rank
                break
    return out


def _agree(left: str | None, right: str | None, token: str) -> bool:
    """Equal and known; set tokens (``*_del``) agree when they share a variant."""
    if not left or not right:
        return False
    if token.endswith("_del"):
        return not set(left.split(SET_SEPARATOR)).isdisjoint(right.split(SET_SEPARATOR))
    return left == right


def blocking_values(tokens: Mapping[str, str]) -> list[str]:
    """The record's blocking values (``"dob=19800102"``-style), one per key whose tokens are all known."""
    out = []
    for key in BLOCKING_KEYS:
        parts = [tokens.get(name, "") for name in key]
        if all(parts):
            out.append("&".join(f"{name}={value}" for name, value in zip(key, parts)))
    return out


@dataclass(frozen=True, slots=True)
class Parameters:
    """A trained Fellegi-Sunter model: the prior and a log2 Bayes factor per comparison level.

    ``weights[comparison][gamma]`` is ``log2(m / u)``; built from a Splink model with
    ``exchange.identity.model.parameters_from_splink``.
    """

    prior_weight: float  # log2(lambda / (1 - lambda)), lambda = probability two random records match
    weights: Mapping[str, Mapping[int, float]]


@dataclass(frozen=True, slots=True)
class Score:
    """The outcome of comparing two records: match weight, probability and per-comparison outcomes."""

    weight: float
    gammas: Mapping[str, int]

    @property
    def probability(self) -> float:
        """Match probability implied by the weight (``2**w / (1 + 2**w)``)."""
        return 1.0 / (1.0 + 2.0 ** (-self.weight)) if self.weight > -60 else 0.0

    def agreement(self) -> dict[str, str]:
        """Per comparison, the label of the level that decided it (what a clerical reviewer needs)."""
        out = {}
        for comparison in COMPARISONS:
            gamma = self.gammas[comparison.name]
            if gamma == UNKNOWN:
                out[comparison.name] = "unknown"
            elif gamma == 0:
                out[comparison.name] = "different"
            else:
                out[comparison.name] = comparison.levels[len(comparison.levels) - gamma].label
        return out


def score(left: Mapping[str, str], right: Mapping[str, str], parameters: Parameters) -> Score:
    """Fellegi-Sunter match weight of a pair under ``parameters`` (the sum Splink's ``predict`` computes)."""
    outcome = gammas(left, right)
    weight = parameters.prior_weight + sum(
        parameters.weights[name].get(gamma, 0.0) for name, gamma in outcome.items() if gamma != UNKNOWN
    )
    return Score(weight, outcome)


_LADDERS = tuple(
    (c.name, c.key, tuple((len(c.levels) - rank, tuple((a, b, a.endswith("_del")) for a, b in level.pairs))
                          for rank, level in enumerate(c.levels)))
    for c in COMPARISONS
)
""":data:`COMPARISONS` as :class:`Scorer` walks them: (name, key, ((gamma, ((left, right, is set), ...)), ...))."""


class Scorer:
    """:func:`score` of one record (``left``) against many: the same outcome, a fraction of the cost.

    Linking scores one record against every candidate of its blocks, so what depends on the record alone is
    worked out once: which comparisons are unknown on its side, which level pairs can agree at all (a pair
    whose left token is empty never does) and, for set tokens, the record's own variants as a set. Each call
    then only reads the candidate's tokens. The weights are added in :func:`score`'s order with the same
    ``sum``, so weights and probabilities are equal to the last bit, not merely close.
    """

    __slots__ = ("_plan", "_prior", "_weights")

    def __init__(self, left: Mapping[str, str], parameters: Parameters) -> None:
        self._prior = parameters.prior_weight
        self._weights = parameters.weights
        get = left.get
        plan = []
        for name, key, levels in _LADDERS:
            if not get(key):
                plan.append((name, "", ()))  # unknown whatever the candidate holds
                continue
            possible = []
            for gamma, pairs in levels:
                checks = tuple((b, frozenset(value.split(SET_SEPARATOR)) if is_set else value)
                               for a, b, is_set in pairs if (value := get(a)))
                if checks:  # a level none of whose pairs has a left token can never agree: skipped
                    possible.append((gamma, checks))
            plan.append((name, key, tuple(possible)))
        self._plan = tuple(plan)

    def __call__(self, right: Mapping[str, str]) -> Score:
        """The :class:`Score` of the pair (this scorer's record, ``right``), equal to :func:`score`'s."""
        outcome: dict[str, int] = {}
        added = []
        for name, key, levels in self._plan:
            if not key or not right.get(key):
                outcome[name] = UNKNOWN
                continue
            gamma = 0
            for level_gamma, checks in levels:
                for token, value in checks:
                    other = right.get(token)
                    if other and (other == value if type(value) is str
                                  else not value.isdisjoint(other.split(SET_SEPARATOR))):
                        gamma = level_gamma
                        break
                if gamma:
                    break
            outcome[name] = gamma
            added.append(self._weights[name].get(gamma, 0.0))
        return Score(self._prior + sum(added), outcome)


_NO_SSN_AGREEMENT = (UNKNOWN, 0)

HARD_CONFLICTS: tuple[tuple[str, Mapping[str, tuple[int, ...]]], ...] = (
    ("generational suffix differs", {"suffix": (0,), "ssn": _NO_SSN_AGREEMENT}),
    ("same birth date, different given names", {"birth_date": (4,), "given_name": (0, 1),
                                                "ssn": _NO_SSN_AGREEMENT}),
    ("same given name, different birth dates", {"given_name": (5, 6), "birth_date": (0, 1),
                                                "ssn": _NO_SSN_AGREEMENT}),
)
"""(reason, {comparison: outcomes}): a pair matching every condition of a rule is never linked automatically.

Twins share surname, birth date and address but not a given name; a father and son share name and address
but not a birth date (and often differ in suffix). Weight alone can link both; these rules send such pairs
to a person (the review queue) instead, unless an SSN agrees. The rules are narrow on purpose: a typo in a
given name *or* a birth date alone is the commonest error in real extracts and must still link.
"""


def hard_conflict(outcome: Mapping[str, int]) -> str:
    """The first :data:`HARD_CONFLICTS` reason whose conditions all hold for a pair, or ``""``."""
    for reason, conditions in HARD_CONFLICTS:
        if all(outcome.get(name) in values for name, values in conditions.items()):
            return reason
    return ""


def log2_ratio(m: float, u: float) -> float:
    """``log2(m / u)`` with both clamped away from zero (a level never seen in training)."""
    return math.log2(max(m, 1e-12) / max(u, 1e-12))
