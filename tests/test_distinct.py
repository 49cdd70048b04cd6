"""Distinct-n in the published definitions C1–C6 on a corpus small enough to count by hand."""

from __future__ import annotations

import pytest

from tests.by_hand import score

# unigrams x y x | x z: 5 tokens, 3 types; bigrams (x y) (y x) | (x z): 3 of 3 distinct (no article: ParlAI drops them)
RESPONSES = ["x y x", "x z"]


@pytest.mark.parametrize("spec,expected", [
    ("distinct:corpus", {"dist-1": 3 / 5, "dist-2": 3 / 3}),  # C1: unique / all n-grams, within responses
    ("distinct:paa", {"dist-1": 3 / 5, "dist-2": 3 / 5}),  # C2: unique n-grams / all TOKENS
    ("distinct:concat", {"dist-1": 3 / 5, "dist-2": 4 / 5}),  # C3: one stream, (x x) crosses responses
    ("distinct:per_response", {"dist-1": (2 / 3 + 2 / 2) / 2, "dist-2": (2 / 2 + 1 / 1) / 2}),  # C4: per response
    ("distinct:parlai_inter", {"dist-1": 3 / 5, "dist-2": 3 / 3}),  # C5 across responses
    ("distinct:parlai_intra", {"dist-1": (2 / 3 + 2 / 2) / 2, "dist-2": (2 / 2 + 1 / 1) / 2}),  # C5 per response
], ids=lambda x: x if isinstance(x, str) else "")
def test_each_definition(spec, expected):
    assert score(spec, RESPONSES) == pytest.approx(expected)


def test_n_reports_up_to_n():
    assert set(score("distinct:corpus,n=3", RESPONSES)) == {"dist-1", "dist-2", "dist-3"}
