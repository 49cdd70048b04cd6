"""BLEU conventions on cases small enough to compute by hand (rouge-score's test style); golden vectors and parity
with the reference libraries are in test_golden.py and test_parity_convai2.py."""

from __future__ import annotations

import math

import pytest

from tests.by_hand import score

HYP, REF = "a b c d", "a b c e"  # 3/4 unigrams, 2/3 bigrams, 1/2 trigrams, 0/1 4-grams match; equal lengths


def test_nltk_sentence_bleu_with_the_pdg_weights():
    values = score("bleu:nltk_sentence_avg", [HYP], [REF])
    assert values["bleu-1"] == pytest.approx(3 / 4)
    assert values["bleu-2"] == pytest.approx(math.sqrt(3 / 4 * 2 / 3))
    assert values["bleu-3"] == pytest.approx(math.exp(0.33 * math.log(3 / 4 * 2 / 3 * 1 / 2)))  # weights sum to 0.99
    assert values["bleu-4"] < 1e-70  # no 4-gram match, no smoothing: NLTK's tiny floor, not 0


def test_paa_precision_is_the_corpus_ngram_precision():
    assert score("bleu:paa_precision", [HYP], [REF]) == pytest.approx({"bleu-1": 75.0, "bleu-2": 200 / 3})


def test_multibleu_is_zero_when_an_order_has_no_match():
    assert score("bleu:multibleu", [HYP], [REF]) == {"bleu-4": 0.0}
    assert score("bleu:multibleu", [HYP], [HYP]) == pytest.approx({"bleu-4": 100.0})


def test_pal_swaps_hypothesis_and_reference():
    short, long = "a b", "a b c d"
    assert score("bleu:pal_swapped", [short], [long]) == score("bleu:coco", [long], [short])
    assert score("bleu:pal_swapped", [short], [long]) != score("bleu:coco", [short], [long])  # brevity penalty


def test_idl_released_compares_characters_with_the_roles_swapped():
    # characters of "ab" against those of "abc" as the hypothesis: 2 of 3 characters match, shorter reference
    assert score("bleu:idl_released", ["ab"], ["abc"]) == pytest.approx({"bleu-1": 2 / 3})
