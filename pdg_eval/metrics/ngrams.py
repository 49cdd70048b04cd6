"""N-gram statistics and the BLEU formulas of each reference implementation, bit-for-bit.

One set of statistics per item — ``[hyp_len, closest_ref_len, matches_1..N, totals_1..N]``
(sacreBLEU's layout; totals are raw hypothesis n-gram counts) — feeds every BLEU variant:
NLTK sentence/corpus BLEU, sacreBLEU, pycocoevalcap, multi-bleu.perl and ParlAI. The float
operations replicate each library's order of operations so per-item values are identical.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from typing import Hashable, Sequence

Tokens = Sequence[Hashable]

_STATS_CACHE: dict[tuple, list[int]] = {}
_CACHE_LIMIT = 1 << 17


def ngram_counts(tokens: Tokens, n: int) -> Counter:
    """Counter of the n-grams (tuples) of ``tokens``."""
    if n == 1:
        return Counter(zip(tokens))
    return Counter(zip(*(tokens[i:] for i in range(n))))


def closest_ref_length(ref_lens: Sequence[int], hyp_len: int) -> int:
    """Reference length closest to the hypothesis length, ties to the shorter (NLTK, sacreBLEU,
    pycocoevalcap 'closest' and multi-bleu.perl all agree)."""
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), r))


def match_stats(hyp: Tokens, refs: Sequence[Tokens], max_n: int = 4) -> list[int]:
    """``[hyp_len, closest_ref_len, matches_1..max_n, totals_1..max_n]`` with clipped matches."""
    key = (tuple(hyp), tuple(map(tuple, refs)), max_n)
    cached = _STATS_CACHE.get(key)
    if cached is not None:
        return cached
    hyp_len = len(hyp)
    matches = [0] * max_n
    totals = [max(0, hyp_len - n + 1) for n in range(1, max_n + 1)]
    for n in range(1, max_n + 1):
        if hyp_len < n:
            break
        hyp_counts = ngram_counts(hyp, n)
        if len(refs) == 1:
            ref_counts = ngram_counts(refs[0], n) if len(refs[0]) >= n else {}
            matches[n - 1] = sum(min(c, ref_counts.get(g, 0)) for g, c in hyp_counts.items())
        else:
            max_counts: dict = {}
            for ref in refs:
                if len(ref) < n:
                    continue
                for g, c in ngram_counts(ref, n).items():
                    if c > max_counts.get(g, 0):
                        max_counts[g] = c
            matches[n - 1] = sum(min(c, max_counts.get(g, 0)) for g, c in hyp_counts.items())
    stats = [hyp_len, closest_ref_length([len(r) for r in refs], hyp_len), *matches, *totals]
    if len(_STATS_CACHE) >= _CACHE_LIMIT:
        _STATS_CACHE.clear()
    _STATS_CACHE[key] = stats
    return stats


def split_stats(stats: Sequence[int]) -> tuple[int, int, Sequence[int], Sequence[int]]:
    max_n = (len(stats) - 2) // 2
    return stats[0], stats[1], stats[2:2 + max_n], stats[2 + max_n:]


def sum_stats(items: Sequence[Sequence[int]], nltk_denominators: bool = False) -> list[int]:
    """Corpus totals. NLTK's ``corpus_bleu`` adds ``max(1, total)`` per sentence (its
    ``modified_precision`` denominator), which ``nltk_denominators=True`` reproduces."""
    if not items:
        return []
    width = len(items[0])
    max_n = (width - 2) // 2
    out = [0] * width
    for st in items:
        for i in range(2 + max_n):
            out[i] += st[i]
        if nltk_denominators:
            for i in range(2 + max_n, width):
                out[i] += st[i] if st[i] > 1 else 1
        else:
            for i in range(2 + max_n, width):
                out[i] += st[i]
    return out


def nltk_bleu(stats: Sequence[int], weights: Sequence[float], smoothing: str = "none", epsilon: float = 0.1,
              per_sentence_denominators: bool = True) -> float:
    """NLTK ``corpus_bleu``/``sentence_bleu`` (nltk 3.8–3.10, ``auto_reweigh=False``).

    ``smoothing='none'`` is NLTK's method0 (a zero precision becomes ``sys.float_info.min``);
    ``'method1'`` adds ``epsilon`` to zero numerators. ``per_sentence_denominators`` applies
    NLTK's ``max(1, total)`` to the given (single-sentence) statistics.
    """
    hyp_len, ref_len, matches, totals = split_stats(stats)
    if matches[0] == 0:
        return 0
    if hyp_len > ref_len:
        bp = 1
    elif hyp_len == 0:
        bp = 0
    else:
        bp = math.exp(1 - ref_len / hyp_len)
    logs = []
    for w, num, den in zip(weights, matches, totals):
        if per_sentence_denominators and den < 1:
            den = 1
        if num != 0:
            p = num / den
        elif smoothing == "method1":
            p = epsilon / den
        else:
            p = sys.float_info.min
        if p > 0:
            logs.append(w * math.log(p))
    return bp * math.exp(math.fsum(logs))


def sacrebleu_score(stats: Sequence[int], max_order: int = 4, smooth_method: str = "exp"):
    """sacreBLEU's own ``BLEU.compute_bleu`` on summed statistics (returns its ``BLEUScore``)."""
    from sacrebleu.metrics.bleu import BLEU

    hyp_len, ref_len, matches, totals = split_stats(stats)
    return BLEU.compute_bleu(list(matches[:max_order]), list(totals[:max_order]), hyp_len, ref_len,
                             smooth_method=smooth_method, max_ngram_order=max_order)


def coco_bleu(items: Sequence[Sequence[int]], n: int = 4) -> list[float]:
    """pycocoevalcap 1.2 ``BleuScorer.compute_score(option='closest')`` corpus BLEU-1..n."""
    small, tiny = 1e-9, 1e-15
    testlen = reflen = 0
    guess = [0] * n
    correct = [0] * n
    for st in items:
        hyp_len, ref_len, matches, totals = split_stats(st)
        testlen += hyp_len
        reflen += ref_len
        for k in range(n):
            guess[k] += totals[k]
            correct[k] += matches[k]
    bleus = []
    bleu = 1.0
    for k in range(n):
        bleu *= float(correct[k] + tiny) / (guess[k] + small)
        bleus.append(bleu ** (1.0 / (k + 1)))
    ratio = (testlen + tiny) / (reflen + small)
    if ratio < 1:
        for k in range(n):
            bleus[k] *= math.exp(1 - 1 / ratio)
    return bleus


def multibleu(stats: Sequence[int]) -> tuple[float, list[float], float, float]:
    """Moses ``multi-bleu.perl`` (as shipped in HLTCHKUST/PAML@35b3a3e:utils/multi-bleu.perl) on summed
    statistics: returns (BLEU x100, precisions x100, BP, ratio). Any zero precision gives 0."""
    hyp_len, ref_len, matches, totals = split_stats(stats)
    precisions = [m / t if t else 0.0 for m, t in zip(matches[:4], totals[:4])]
    bp = 1.0
    if ref_len == 0:
        return 0.0, [0.0] * 4, 0.0, 0.0
    if hyp_len < ref_len:
        bp = math.exp(1 - ref_len / hyp_len) if hyp_len else 0.0

    def my_log(x: float) -> float:
        return math.log(x) if x else -9999999999

    bleu = bp * math.exp(sum(my_log(p) for p in precisions) / 4)
    return 100 * bleu, [100 * p for p in precisions], bp, hyp_len / ref_len
