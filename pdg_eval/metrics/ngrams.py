"""N-gram statistics and the BLEU formulas of each reference implementation, bit-for-bit.

One set of statistics per item — ``[hyp_len, closest_ref_len, matches_1..N, totals_1..N]``
(sacreBLEU's layout; totals are raw hypothesis n-gram counts) — feeds every BLEU variant:
NLTK sentence/corpus BLEU, sacreBLEU, pycocoevalcap, multi-bleu.perl and ParlAI. The float
operations replicate each library's order of operations so per-item values are identical.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections import Counter
from typing import Hashable, Sequence

Tokens = Sequence[Hashable]

_STATS_CACHE: dict[tuple, list[int]] = {}
_COUNTS_CACHE: dict[tuple, dict] = {}
_CACHE_LIMIT = 1 << 17

try:  # the C helper behind collections.Counter, without Counter's per-call overhead
    from collections import _count_elements
except ImportError:  # pragma: no cover - other Python implementations
    def _count_elements(mapping, iterable):
        for elem in iterable:
            mapping[elem] = mapping.get(elem, 0) + 1


def ngram_list(tokens: Sequence, n: int) -> list[tuple]:
    """The n-grams (tuples) of ``tokens`` in order, with repeats (none when the text is shorter than n)."""
    return list(zip(*(tokens[i:] for i in range(n)))) if len(tokens) >= n else []


def ngram_counts(tokens: Tokens, n: int) -> Counter:
    """Counter of the n-grams (tuples) of ``tokens``."""
    if n == 1:
        return Counter(zip(tokens))
    return Counter(zip(*(tokens[i:] for i in range(n))))


def all_ngram_counts(tokens: Tokens, max_n: int) -> dict[tuple, int]:
    """Counts of every n-gram of orders 1..max_n in one dict (a tuple's length is its order), cached per text."""
    key = (tokens, max_n)
    counts = _COUNTS_CACHE.get(key)
    if counts is None:
        counts = {}
        for n in range(1, min(max_n, len(tokens)) + 1):
            _count_elements(counts, zip(*[tokens[i:] for i in range(n)]) if n > 1 else zip(tokens))
        if len(_COUNTS_CACHE) >= _CACHE_LIMIT:
            _COUNTS_CACHE.clear()
        _COUNTS_CACHE[key] = counts
    return counts


def ngram_totals(length: int, max_n: int) -> list[int]:
    """How many n-grams of orders 1..max_n a text of ``length`` tokens has."""
    return [length - n + 1 if length >= n else 0 for n in range(1, max_n + 1)]


def closest_ref_length(ref_lens: Sequence[int], hyp_len: int) -> int:
    """Reference length closest to the hypothesis length, ties to the shorter (NLTK, sacreBLEU,
    pycocoevalcap 'closest' and multi-bleu.perl all agree)."""
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), r))


def match_stats(hyp: Tokens, refs: Sequence[Tokens], max_n: int = 4) -> list[int]:
    """``[hyp_len, closest_ref_len, matches_1..max_n, totals_1..max_n]`` with clipped matches
    (counts clipped by the maximum count in any one reference, as every reference tool does). Tokens are a
    tuple, or a string for its characters."""
    key = (hyp, tuple(refs), max_n)
    cached = _STATS_CACHE.get(key)
    if cached is not None:
        return cached
    hyp_len = len(hyp)
    matches = [0] * max_n
    hyp_counts = all_ngram_counts(hyp, max_n)
    if len(refs) == 1:
        ref_counts = all_ngram_counts(refs[0], max_n)
        for g in hyp_counts.keys() & ref_counts.keys():  # the shared n-grams only (a set operation in C)
            c, r = hyp_counts[g], ref_counts[g]
            matches[len(g) - 1] += c if c < r else r
    else:  # clip by the maximum count over references
        all_ref_counts = [all_ngram_counts(ref, max_n) for ref in refs]
        shared = set().union(*all_ref_counts).intersection(hyp_counts)
        for g in shared:
            c, r = hyp_counts[g], max(counts.get(g, 0) for counts in all_ref_counts)
            matches[len(g) - 1] += c if c < r else r
    stats = [hyp_len, closest_ref_length([len(r) for r in refs], hyp_len), *matches, *ngram_totals(hyp_len, max_n)]
    if len(_STATS_CACHE) >= _CACHE_LIMIT:
        _STATS_CACHE.clear()
    _STATS_CACHE[key] = stats
    return stats


def match_stats_batch(pairs: Sequence[tuple[Tokens, Sequence[Tokens]]], max_n: int = 4) -> list[list[int]]:
    """:func:`match_stats` of many ``(hyp, refs)`` pairs: the same lists (parity: tests/test_ngrams_batch.py), the
    uncached ones counted together with numpy sorts instead of one dict of n-grams per text."""
    keys = [(hyp, tuple(refs), max_n) for hyp, refs in pairs]
    out = [_STATS_CACHE.get(key) or _mirrored_stats(key) for key in keys]
    todo = [i for i, stats in enumerate(out) if stats is None and keys[i][1]]  # no reference: match_stats says why
    if len(todo) > 1:
        for i, stats in zip(todo, _vectorised_match_stats([pairs[i] for i in todo], max_n)):
            if len(_STATS_CACHE) >= _CACHE_LIMIT:
                _STATS_CACHE.clear()
            out[i] = _STATS_CACHE[keys[i]] = stats
    return [stats if stats is not None else match_stats(*pairs[i], max_n) for i, stats in enumerate(out)]


def pair_overlaps(pairs: Sequence[tuple[Tokens, Tokens]], max_n: int) -> list[list[int]]:
    """The multiset overlap of orders 1..max_n of each pair of texts (the clipped matches of :func:`match_stats`,
    the same either way round): rouge-score's ROUGE-N and ParlAI F1 count this."""
    return [stats[2:2 + max_n] for stats in match_stats_batch([(a, (b,)) for a, b in pairs], max_n)]


def _mirrored_stats(key: tuple) -> list[int] | None:
    """The statistics of ``(hyp, (ref,), max_n)`` from cached ones of ``(ref, (hyp,), max_n)``: with one reference a
    clipped match count is the smaller of two counts either way round (PAL's swapped BLEU after the plain one)."""
    hyp, refs, max_n = key
    if len(refs) != 1:
        return None
    mirror = _STATS_CACHE.get((refs[0], (hyp,), max_n))
    if mirror is None:
        return None
    return [mirror[1], mirror[0], *mirror[2:2 + max_n], *ngram_totals(len(hyp), max_n)]


def _token_ids(texts: list[Sequence[Hashable]]):
    """Every token of ``texts`` (concatenated) as an integer id, and the number of ids: Unicode code points for
    strings (their characters are the tokens), else the index of the token among the distinct ones."""
    import numpy as np

    if all(isinstance(t, str) for t in texts):
        points = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        distinct = np.unique(points)
        return np.searchsorted(distinct, points).astype(np.int64), len(distinct)
    flat = list(itertools.chain.from_iterable(texts))
    vocab = {token: i for i, token in enumerate(set(flat))}
    return np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat)), len(vocab)


def _vectorised_match_stats(pairs: Sequence[tuple[Tokens, Sequence[Tokens]]], max_n: int) -> list[list[int]]:
    """The statistics of :func:`match_stats` for pairs that each have a reference.

    Every n-gram occurrence gets the integer key ``(item * (R + 1) + slot) * V**n + gram`` (slot 0: the hypothesis,
    1..R: its references; gram: the n-gram's token ids in base V); sorting the keys counts each n-gram per text, the
    maximum over an item's reference slots is the clipping count, and matches are the smaller of the two counts."""
    import numpy as np

    texts = [text for hyp, refs in pairs for text in (hyp, *refs)]
    ids, vocab_size = _token_ids(texts)
    n_items = len(pairs)
    n_refs = np.fromiter((len(refs) for _, refs in pairs), dtype=np.int64, count=n_items)
    max_refs = int(n_refs.max())
    if n_items * (max_refs + 1) * max(vocab_size, 1) ** max_n >= 1 << 62:  # keys would overflow int64
        if n_items == 1:
            return [match_stats(*pairs[0], max_n)]
        half = n_items // 2
        return _vectorised_match_stats(pairs[:half], max_n) + _vectorised_match_stats(pairs[half:], max_n)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    item_of_text = np.repeat(np.arange(n_items), n_refs + 1)
    hyp_text = np.cumsum(n_refs + 1) - (n_refs + 1)
    slot_of_text = np.arange(len(texts)) - hyp_text[item_of_text]
    text_of_pos = np.repeat(np.arange(len(texts)), lengths)
    end_of_pos = np.cumsum(lengths)[text_of_pos]
    hyp_pos = slot_of_text[text_of_pos] == 0

    hyp_len = lengths[hyp_text]
    is_ref = slot_of_text > 0
    ref_len, ref_item = lengths[is_ref], item_of_text[is_ref]
    closest = np.lexsort((ref_len, np.abs(ref_len - hyp_len[ref_item]), ref_item))  # ties to the shorter
    columns = [hyp_len, ref_len[closest][np.cumsum(n_refs) - n_refs]]

    slots = max_refs + 1
    gram = (item_of_text[text_of_pos] * slots + slot_of_text[text_of_pos]) * vocab_size + ids
    span = vocab_size  # V**n
    for n in range(1, max_n + 1):
        if n > 1:
            gram = gram[:-1] * vocab_size + ids[n - 1:]
            span *= vocab_size
        inside = np.arange(len(gram)) + n <= end_of_pos[:len(gram)]  # the n-gram does not cross its text's end
        hyp_keys = gram[inside & hyp_pos[:len(gram)]]
        hyp_keys = hyp_keys // (slots * span) * span + hyp_keys % span  # item * V**n + gram
        hyp_unique, hyp_counts = np.unique(hyp_keys, return_counts=True)
        ref_unique, ref_counts = np.unique(gram[inside & ~hyp_pos[:len(gram)]], return_counts=True)
        ref_unique = ref_unique // (slots * span) * span + ref_unique % span
        if max_refs > 1 and len(ref_unique):  # the largest count over each item's references
            order = np.argsort(ref_unique, kind="stable")
            ref_unique, ref_counts = ref_unique[order], ref_counts[order]
            starts = np.flatnonzero(np.r_[True, ref_unique[1:] != ref_unique[:-1]])
            ref_unique, ref_counts = ref_unique[starts], np.maximum.reduceat(ref_counts, starts)
        at = np.searchsorted(ref_unique, hyp_unique).clip(max=max(len(ref_unique) - 1, 0))
        shared = ref_unique[at] == hyp_unique if len(ref_unique) else np.zeros(len(hyp_unique), dtype=bool)
        clipped = np.minimum(hyp_counts[shared], ref_counts[at[shared]])
        columns.append(np.bincount(hyp_unique[shared] // span, weights=clipped, minlength=n_items).astype(np.int64))
    columns += [np.maximum(hyp_len - n + 1, 0) for n in range(1, max_n + 1)]
    return np.stack(columns, axis=1).tolist()


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
    return nltk_bleu_multi(stats, (weights,), smoothing, epsilon, per_sentence_denominators)[0]


def nltk_bleu_multi(stats: Sequence[int], weight_sets: Sequence[Sequence[float]], smoothing: str = "none",
                    epsilon: float = 0.1, per_sentence_denominators: bool = True) -> list[float]:
    """:func:`nltk_bleu` for several weight tuples at once (shared precisions and brevity penalty,
    the same float operations per weight tuple)."""
    hyp_len, ref_len, matches, totals = split_stats(stats)
    if matches[0] == 0:
        return [0] * len(weight_sets)
    if hyp_len > ref_len:
        bp = 1
    elif hyp_len == 0:
        bp = 0
    else:
        bp = math.exp(1 - ref_len / hyp_len)
    logs = []
    for num, den in zip(matches, totals):
        if per_sentence_denominators and den < 1:
            den = 1
        if num != 0:
            p = num / den
        elif smoothing == "method1":
            p = epsilon / den
        else:
            p = sys.float_info.min
        logs.append(math.log(p) if p > 0 else None)
    return [bp * math.exp(math.fsum([w * lg for w, lg in zip(weights, logs) if lg is not None]))
            for weights in weight_sets]


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
