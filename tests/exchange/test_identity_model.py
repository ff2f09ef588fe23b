"""The Splink model wrapper: Splink's scores equal the person index's scorer; training and clustering work."""
from __future__ import annotations

import copy

import pytest

from exchange.identity import synthetic
from exchange.identity.model import default_model, default_parameters, link_tables, parameters_from_splink
from transforms.identity_comparisons import score
from transforms.identity_normalise import tokens_for
from transforms.identity_tokens import keyed_tokens


def _rows(count: int, seed: int) -> tuple[list[dict[str, str]], dict[str, int]]:
    records = synthetic.records(count, seed=seed)
    rows = [{**tokens_for(synthetic.values(r)), "unique_id": f"r{i}"} for i, r in enumerate(records)]
    return rows, {f"r{i}": r.person_id for i, r in enumerate(records)}


def test_index_scorer_gives_splinks_match_weight_for_every_pair():
    rows, _ = _rows(1500, seed=21)
    linkage = link_tables([rows], model=default_model(), conflicts=False)
    by_id = {r["unique_id"]: r for r in rows}
    parameters = default_parameters()
    assert len(linkage.pairs) > 500
    for left, right, weight, _probability in linkage.pairs:
        assert score(by_id[left], by_id[right], parameters).weight == pytest.approx(weight, abs=1e-6)


def test_splink_trains_on_keyed_tokens_and_finds_the_people():
    rows, truth = _rows(4000, seed=5)
    secret = b"z" * 32
    hashed = [{**keyed_tokens({k: v for k, v in r.items() if k != "unique_id"}, secret),
               "unique_id": r["unique_id"]} for r in rows]
    linkage = link_tables([hashed], threshold=0.99)  # parameters estimated from the hashed data itself
    predicted = [(a, b) for a, b, _w, p in linkage.pairs if p >= 0.99
                 and linkage.clusters[a] == linkage.clusters[b]]
    right = sum(truth[a] == truth[b] for a, b in predicted)
    true_pairs = sum(1 for a in truth for b in truth if a < b and truth[a] == truth[b])
    assert right / len(predicted) > 0.97 and right / true_pairs > 0.9
    assert parameters_from_splink(linkage.model).weights["birth_date"][4] > 5  # exact DOB is strong evidence


def test_model_for_another_spec_is_refused():
    model = copy.deepcopy(default_model())
    model["comparisons"][0]["comparison_levels"].pop(1)
    with pytest.raises(ValueError, match="given_name"):
        parameters_from_splink(model)
