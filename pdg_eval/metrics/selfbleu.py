"""Self-BLEU: diversity as BLEU of each response against the others.

- ``texygen``: every response against ALL other responses (geek-ai/Texygen@3104e22:
  utils/metrics/SelfBleu.py:10-87, ``get_score(is_fast=False)``).
  Computed exactly in O(total n-grams): for each n-gram we keep the two largest per-response
  counts, so "max count over all others" is a lookup, and the closest reference length over
  the others is a search in the sorted length multiset.
- ``texygen_fast``: Texygen's default ``get_score()`` (``is_fast=True``), which silently keeps the first 500
  responses of the file and scores each against the other 499.
- ``morpheus``: each response against one random partner (Toyhom/MORPHEUS@18c86fc:Matrics.py,
  ``get_distinct``); the original shuffle is unseeded, here ``seed`` is explicit (or
  ``pairing=cyclic`` pairs i with i+1). Identical pairs are skipped, as in the original.

Lower is more diverse.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from ..records import Record
from .base import Metric, choice_option, int_list_option, int_option, mean, option, register_metric
from .bleu import NLTK_PDG_WEIGHTS
from .ngrams import match_stats, ngram_counts, nltk_bleu


def _closest_other_length(sorted_lengths: list[int], length_counts: Counter, hyp_len: int, own_len: int) -> int:
    """Closest length (ties to the shorter) in the length multiset minus one copy of ``own_len``."""
    def available(value: int) -> bool:
        return length_counts[value] - (1 if value == own_len else 0) > 0

    pos = bisect.bisect_left(sorted_lengths, hyp_len)
    best = None
    lo, hi = pos - 1, pos
    # scan outward until one candidate on each side is found (a removed copy may force a step further)
    while lo >= 0 and not available(sorted_lengths[lo]):
        lo -= 1
    while hi < len(sorted_lengths) and not available(sorted_lengths[hi]):
        hi += 1
    for idx in (lo, hi):
        if 0 <= idx < len(sorted_lengths):
            cand = sorted_lengths[idx]
            if best is None or (abs(cand - hyp_len), cand) < (abs(best - hyp_len), best):
                best = cand
    assert best is not None
    return best


def self_bleu_all_others(token_lists: Sequence[Sequence[int]], gram: int, epsilon: float = 0.1) -> list[float]:
    """Texygen self-BLEU per response: NLTK ``sentence_bleu(others, hyp, (1/gram,)*gram, method1)``."""
    size = len(token_lists)
    if size < 2:
        return [0.0] * size
    weights = tuple(1.0 / gram for _ in range(gram))
    per_order = []
    for n in range(1, gram + 1):
        counts = [ngram_counts(toks, n) if len(toks) >= n else Counter() for toks in token_lists]
        top: dict[tuple, list[int]] = {}  # n-gram -> [best count, owner, second best count]
        for idx, counter in enumerate(counts):
            for g, c in counter.items():
                entry = top.get(g)
                if entry is None:
                    top[g] = [c, idx, 0]
                elif c > entry[0]:
                    entry[2] = entry[0]
                    entry[0], entry[1] = c, idx
                elif c > entry[2]:
                    entry[2] = c
        per_order.append((counts, top))
    lengths = [len(t) for t in token_lists]
    length_counts = Counter(lengths)
    sorted_lengths = sorted(length_counts)
    scores = []
    for i, toks in enumerate(token_lists):
        matches, totals = [], []
        for counts, top in per_order:
            m = 0
            for g, c in counts[i].items():
                best, owner, second = top[g]
                other = second if owner == i else best
                m += c if c < other else other
            matches.append(m)
            totals.append(sum(counts[i].values()))
        ref_len = _closest_other_length(sorted_lengths, length_counts, lengths[i], lengths[i])
        scores.append(nltk_bleu([lengths[i], ref_len, *matches, *totals], weights, "method1", epsilon))
    return scores


class SelfBleu(Metric):
    """BLEU of each response against other responses: the statistics are each response's tokens, so statistics of
    different runs (and systems) can be mixed in one corpus."""

    higher_is_better = False

    def scored_against(self) -> tuple[str, ...]:
        return ()  # the responses alone

    def item_stats(self, record: Record) -> list[str]:
        return list(self.tok(record.response))

    def bootstrap_bias(self) -> str | None:
        return ("a bootstrap resample repeats responses, which then match their own copy: self-BLEU rises above "
                "the estimate (use AR for tests)")


@dataclass
class Grams:
    """The orders n of the self-BLEU-n reported."""

    grams: tuple[int, ...] = option((2, 3, 4), int_list_option(1, 5))


@register_metric("self-bleu", "texygen", default=True)
class TexygenSelfBleu(SelfBleu):
    description = "each response vs ALL others, NLTK sentence_bleu, uniform weights, method1 (exact)"
    source = "geek-ai/Texygen@3104e22:utils/metrics/SelfBleu.py:10-87"
    default_tokenizer = "treebank"
    Options = Grams
    fixed_signature = {"smooth": "method1", "refs": "all-others"}

    @property
    def keys(self) -> list[str]:
        return [f"self-bleu-{g}" for g in self.options.grams]

    def aggregate(self, stats: Sequence[list[str]]) -> dict[str, float]:
        ids: dict[str, int] = {}  # integer ids hash faster in the n-gram tables
        interned = [[ids.setdefault(t, len(ids)) for t in s] for s in stats]
        return {f"self-bleu-{g}": mean(self_bleu_all_others(interned, g)) for g in self.options.grams}


@register_metric("self-bleu", "texygen_fast")
class TexygenFastSelfBleu(TexygenSelfBleu):
    """Texygen's default call, ``get_score(is_fast=True)``: only the first 500 responses of the file (in file order)
    are scored, each against the other 499."""

    description = "Texygen's default get_score(): the first 500 responses only, each vs the other 499 (file order)"
    source = "geek-ai/Texygen@6c676c8:utils/metrics/SelfBleu.py (SelfBleu.get_score, get_bleu_fast, sample_size)"
    sample_size = 500
    fixed_signature = {"smooth": "method1", "refs": "first-500"}

    def aggregate(self, stats: Sequence[list[str]]) -> dict[str, float]:
        return super().aggregate(stats[:self.sample_size])


@dataclass
class Pairing:
    """How each response's partner is picked: a seeded shuffle (seed unset: 0) or ``cyclic`` (i with i+1)."""

    pairing: str = option("shuffle", choice_option("shuffle", "cyclic"))
    seed: int | None = option(None, int_option(0))


@register_metric("self-bleu", "morpheus")
class MorpheusSelfBleu(SelfBleu):
    description = "each response vs one partner (seeded shuffle or cyclic), no smoothing, PDG weights"
    source = "Toyhom/MORPHEUS@8bf1bd9:Metrics.py:125-150"
    Options = Pairing
    fixed_signature = {"smooth": "none"}
    keys = [f"sbleu-{n}" for n in range(1, 5)]

    def setup(self) -> None:
        if self.options.pairing == "shuffle":
            self.options.seed = 0 if self.options.seed is None else self.options.seed
        elif self.options.seed is not None:
            raise self.option_error("seed= applies only to pairing=shuffle")

    def aggregate(self, stats: Sequence[list[str]]) -> dict[str, float]:
        partners = list(range(len(stats)))
        if self.options.pairing == "cyclic":
            partners = partners[1:] + partners[:1]
        else:
            random.Random(self.options.seed).shuffle(partners)
        sums, kept = [0.0] * 4, 0
        for i, j in enumerate(partners):
            hyp, other = stats[i], stats[j]
            if list(hyp) == list(other):
                continue
            st = match_stats(tuple(hyp), [tuple(other)], 4)
            for n in range(1, 5):
                sums[n - 1] += nltk_bleu(st, NLTK_PDG_WEIGHTS[n])
            kept += 1
        return {f"sbleu-{n}": (sums[n - 1] / kept if kept else 0.0) for n in range(1, 5)}
