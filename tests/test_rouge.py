"""ROUGE conventions on cases small enough to compute by hand: pltrdy's set semantics, rouge-score's multiset LCS,
pycocoevalcap's F-beta."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdg_eval.metrics.lcs import lcs_token_set
from tests.by_hand import score


def test_pltrdy_counts_distinct_ngrams_and_the_union_lcs_as_sets():
    # 'a a b' vs 'a b b': the union LCS covers the reference's word set {a, b} -> recall 1
    assert score("rouge:pltrdy", ["a a b"], ["a b b"])["rouge-l"] == pytest.approx(1.0)
    values = score("rouge:pltrdy", ["b a"], ["a b"])  # same words (ROUGE-1 recall 1), one in order (ROUGE-L 1/2)
    assert values["rouge-1"] == pytest.approx(1.0) and values["rouge-l"] == pytest.approx(0.5)


def test_rouge_score_counts_the_lcs_with_repeats():
    # LCS('a a b', 'a b b') = 2 of 3 tokens on both sides -> F = 2/3
    assert score("rouge:rouge_score", ["a a b"], ["a b b"])["rougeL"] == pytest.approx(2 / 3)


def test_coco_rouge_l_is_f_beta():
    # LCS 2 of 3 on both sides: P = R = 2/3, so F_beta = 2/3 whatever beta
    assert score("rouge:coco", ["a b c"], ["a b d"]) == pytest.approx({"rouge-l": 2 / 3})
    # P = 2/2, R = 2/4: F = (1 + 1.44) * 1 * 0.5 / (0.5 + 1.44 * 1)
    assert score("rouge:coco", ["a b"], ["a b c d"]) == pytest.approx({"rouge-l": 2.44 * 0.5 / (0.5 + 1.44)})


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from("abcde"), max_size=12), st.lists(st.sampled_from("abcdf"), max_size=12))
def test_lcs_token_set_is_pltrdy_recon_lcs(x, y):
    from rouge.rouge_score import _recon_lcs

    assert lcs_token_set(x, y) == set(_recon_lcs(x, y)._ngrams)  # exclusive: the LCS's tokens as a set


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", ".", " ", "  ", "a.b"]), max_size=14).map("".join),
       st.lists(st.sampled_from(["a", "b", "d", ".", " ", ". ."]), max_size=14).map("".join))
def test_pltrdy_scores_are_the_library_s(hyp, ref):
    from rouge import Rouge

    from pdg_eval.metrics.rouge import pltrdy_scores

    try:
        scores = Rouge().get_scores(hyp, ref)[0]
    except (ValueError, RecursionError, ZeroDivisionError):
        return  # the library refuses these texts; pdg-eval's empty-text rule is tested by hand above
    expected = [scores[m][k] for m in ("rouge-1", "rouge-2", "rouge-l") for k in ("r", "p", "f")]
    assert pltrdy_scores(hyp, ref) == expected
