"""Property tests: pdg-eval's fast algorithms equal the reference libraries on random inputs
(small vocabularies force repeats, ties, empty strings and multi-sentence text)."""

from __future__ import annotations

import warnings

from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu

from pdg_eval.metrics.bleu import NLTK_PDG_WEIGHTS
from pdg_eval.metrics.lcs import lcs_length
from pdg_eval.metrics.ngrams import match_stats, nltk_bleu, sum_stats
from pdg_eval.metrics.rouge import coco_rouge_l, pltrdy_scores
from pdg_eval.metrics.selfbleu import self_bleu_all_others

words = st.sampled_from(["a", "b", "c", "d", "the", "."])
sentence = st.lists(words, min_size=0, max_size=9).map(tuple)
nonempty = st.lists(words, min_size=1, max_size=9).map(tuple)
SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(hyp=sentence, refs=st.lists(sentence, min_size=1, max_size=3), smooth=st.booleans())
def test_sentence_bleu_equals_nltk(hyp, refs, smooth):
    stats = match_stats(hyp, tuple(refs), 4)
    fn = SmoothingFunction().method1 if smooth else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n, weights in NLTK_PDG_WEIGHTS.items():
            assert nltk_bleu(stats, weights, "method1" if smooth else "none") == \
                sentence_bleu([list(r) for r in refs], list(hyp), weights, smoothing_function=fn)


@SETTINGS
@given(pairs=st.lists(st.tuples(sentence, nonempty), min_size=1, max_size=6))
def test_corpus_bleu_equals_nltk(pairs):
    stats = [match_stats(h, (r,), 4) for h, r in pairs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = corpus_bleu([[list(r)] for _, r in pairs], [list(h) for h, _ in pairs], NLTK_PDG_WEIGHTS[4])
    assert nltk_bleu(sum_stats(stats, nltk_denominators=True), NLTK_PDG_WEIGHTS[4],
                     per_sentence_denominators=False) == want


@SETTINGS
@given(a=sentence, b=sentence)
def test_bit_parallel_lcs_equals_dp(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    assert lcs_length(a, b) == table[-1][-1]


@SETTINGS
@given(hyp=nonempty, ref=nonempty)
def test_pltrdy_rouge_equals_library(hyp, ref):
    from rouge import Rouge

    h, r = " ".join(hyp), " ".join(ref)
    try:
        want = Rouge().get_scores(h, r)[0]
    except ValueError:  # only periods: the library refuses, pdg-eval scores 0
        assert pltrdy_scores(h, r) == [0.0] * 9
        return
    assert pltrdy_scores(h, r) == [want[m][k] for m in ("rouge-1", "rouge-2", "rouge-l") for k in ("r", "p", "f")]


@SETTINGS
@given(hyp=nonempty, ref=nonempty)
def test_coco_rouge_equals_library(hyp, ref):
    from pycocoevalcap.rouge.rouge import Rouge

    assert coco_rouge_l(hyp, [ref]) == Rouge().calc_score([" ".join(hyp)], [" ".join(ref)])


@settings(max_examples=60, deadline=None)
@given(corpus=st.lists(sentence, min_size=2, max_size=12), gram=st.integers(min_value=1, max_value=4))
def test_all_others_self_bleu_equals_naive(corpus, gram):
    weights = tuple(1.0 / gram for _ in range(gram))
    naive = [sentence_bleu([list(x) for x in corpus[:i] + corpus[i + 1:]], list(h), weights,
                           smoothing_function=SmoothingFunction().method1) for i, h in enumerate(corpus)]
    assert self_bleu_all_others(corpus, gram) == naive
