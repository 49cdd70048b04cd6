"""Word-overlap metrics (ParlAI F1, persona F1, persona coverage) on cases small enough to compute by hand."""

from __future__ import annotations

import math

import pytest

from tests.by_hand import score


def test_parlai_f1_drops_articles_and_punctuation():
    # normalize_answer: "cat sat" vs "cat sat down": P = 1, R = 2/3
    assert score("f1", ["The cat sat."], ["a cat sat down"]) == pytest.approx({"f1": 2 * (2 / 3) / (1 + 2 / 3)})


def test_persona_f1_is_a_set_f1_with_the_persona():
    # {i, like, dogs} and {dogs, are, nice, i, think} share {i, dogs}: P = 2/5, R = 2/3
    values = score("p-f1", ["dogs are nice i think"], personas=[["i like dogs"]])
    assert values == pytest.approx({"p-f1": 2 * 0.4 * (2 / 3) / (0.4 + 2 / 3)})
    # scikit-learn's stop words take "i" out of both sides: {dogs} of {like, dogs} and {dogs, nice, think}
    values = score("p-f1,stopwords=sklearn", ["dogs are nice i think"], personas=[["i like dogs"]])
    assert values == pytest.approx({"p-f1": 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2)})


def test_dhap_persona_cover_is_the_best_sentence_local_idf():
    # N = 2 persona sentences; "dogs" (df 1) in the first, "cats" (df 1) in the second: each ln(2/1), max
    values = score("p-cover:dhap", ["dogs and cats"], personas=[["i like dogs", "i hate cats"]])
    assert values == pytest.approx({"p-cover": math.log(2)})
