"""Self-BLEU conventions on cases small enough to compute by hand (rouge-score's test style); parity with NLTK on
ConvAI2 is in test_parity_convai2.py."""

from __future__ import annotations

import math

import pytest

from pdg_eval.metrics.base import build_metric

from tests.by_hand import score


def test_texygen_each_response_against_all_others():
    # "a b c" vs "a b d" (and back): p1 = 2/3, p2 = 1/2, equal lengths (BP = 1) -> sqrt(2/3 * 1/2)
    assert score("self-bleu:texygen,grams=2", ["a b c", "a b d"]) == {"self-bleu-2": pytest.approx(math.sqrt(1 / 3))}


def test_texygen_fast_keeps_the_first_500_responses_only():
    # 500 copies of "a b" score 1 against each other; a 501st, unmatched response counts only without the cut
    responses = ["a b"] * 500 + ["c d"]
    assert score("self-bleu:texygen_fast,grams=2", responses) == {"self-bleu-2": 1.0}
    assert score("self-bleu:texygen,grams=2", responses)["self-bleu-2"] < 1.0
    assert score("self-bleu:texygen_fast,grams=2", responses[:3]) == score("self-bleu:texygen,grams=2", responses[:3])


def test_morpheus_against_one_partner_without_smoothing():
    # cyclic pairs: each response against the other; p1 = 3/4, p2 = 2/3 -> sbleu-1 = 0.75, sbleu-2 = sqrt(1/2)
    values = score("self-bleu:morpheus,pairing=cyclic", ["a b c d", "a b c e"])
    assert values["sbleu-1"] == pytest.approx(0.75) and values["sbleu-2"] == pytest.approx(math.sqrt(0.5))


def test_texygen_fast_signature_names_the_cut():
    metric = build_metric("self-bleu:texygen_fast")
    assert "refs:first-500" in str(metric.signature()) and metric.spec == "self-bleu:texygen_fast,grams=2,3,4,tok=treebank"
