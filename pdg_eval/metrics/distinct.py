"""Distinct-n in the six published definitions C1–C6.

The same outputs give Dist-1 = 85.40 per response (C4, IDL) and 1.90 at corpus level (C1, CLV,
MORPHEUS) — the variant name is part of every reported number. Corpus variants keep each
response's tokens as its statistics, so any resample of items is re-aggregated exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..records import Record
from .base import MeanOfItems, Metric, int_option, option, register_metric
from .ngrams import ngram_list

if TYPE_CHECKING:
    import numpy as np


def _ratio_or_zero(unique: int, total: int) -> float:
    return unique / total if total else 0.0


@dataclass
class UpToN:
    """Every convention reports dist-1 .. dist-n."""

    n: int = option(2, int_option(1, 6))


class Distinct(Metric):
    """Distinct-1..n of the responses alone."""

    Options = UpToN

    def scored_against(self) -> tuple[str, ...]:
        return ()  # the responses alone

    @property
    def keys(self) -> list[str]:
        return [f"dist-{k}" for k in range(1, self.options.n + 1)]


class PerResponseDistinct(MeanOfItems, Distinct):
    """A Distinct value per response (its statistics), mean over responses."""

    def item_stats(self, record: Record) -> list[float]:
        tokens = self.tok(record.response)
        return [self.ratio(ngram_list(tokens, n)) for n in range(1, self.options.n + 1)]

    def ratio(self, grams: list[tuple]) -> float:
        """Distinct value of one response's n-grams."""
        raise NotImplementedError

    def item_values(self, stats: list[float]) -> dict[str, float]:
        return dict(zip(self.keys, stats))


class CorpusDistinct(Distinct):
    """Distinct over the corpus of responses: each response's tokens are its statistics (any resample of items is
    re-aggregated exactly); n-grams are counted within responses."""

    def item_stats(self, record: Record) -> list[str]:
        return list(self.tok(record.response))

    def bootstrap_bias(self) -> str | None:
        return ("a bootstrap resample repeats responses, whose n-grams are then not new: corpus Distinct "
                "falls below the estimate (use AR for tests)")

    def aggregate(self, stats: Sequence) -> dict[str, float]:
        out = {}
        tokens = sum(len(s) for s in stats)
        for n in range(1, self.options.n + 1):
            unique: set[tuple] = set()
            for s in stats:  # the n-grams of each response (zip stops at its end)
                unique.update(zip(*[s[i:] for i in range(n)]))
            total = sum(len(s) - n + 1 for s in stats if len(s) >= n)
            out[f"dist-{n}"] = self.ratio(len(unique), total, tokens)
        return out

    def ratio(self, unique: int, grams: int, tokens: int) -> float:
        """Dist-n from the corpus' distinct n-grams, all n-grams and tokens."""
        return _ratio_or_zero(unique, grams)

    def resampling_form(self, stats_a: Sequence, stats_b: Sequence):
        from .forms import DistinctForm

        return DistinctForm(self, stats_a, stats_b)

    def distinct_from_counts(self, unique: "np.ndarray", grams: "np.ndarray", tokens: "np.ndarray") -> "np.ndarray":
        """:meth:`ratio` of many resampled corpora at once."""
        import numpy as np

        return np.where(grams > 0, unique / np.where(grams > 0, grams, 1), 0.0)


@register_metric("distinct", "corpus", default=True)
class CorpusNgramDistinct(CorpusDistinct):
    description = "C1 Li et al. 2016: unique / all n-grams over all responses (n-grams within responses)"
    source = "Toyhom/CLV@a4c7bfe:Metrics.py:114-123; Toyhom/MORPHEUS@8bf1bd9:Metrics.py:113-122"


@register_metric("distinct", "paa")
class PaaDistinct(CorpusDistinct):
    description = "C2 PAA/PAL eval_distinct_avg: punctuation padded, unique n-grams / TOTAL TOKENS"
    source = "hqsiswiliam/persona-adaptive-attention@2539c5c:evaluation/evaluation_helper.py:40-57"
    default_tokenizer = "punct"

    def ratio(self, unique: int, grams: int, tokens: int) -> float:
        return _ratio_or_zero(unique, tokens)

    def distinct_from_counts(self, unique, grams, tokens):
        return super().distinct_from_counts(unique, tokens, tokens)


@register_metric("distinct", "parlai_inter")
class ParlaiInterDistinct(CorpusDistinct):
    description = "C5 ParlAI interdistinct: corpus types / tokens on normalize_answer tokens"
    source = "facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:799-851"
    default_tokenizer = "parlai"

    def ratio(self, unique: int, grams: int, tokens: int) -> float:
        return max(unique, 1e-12) / max(grams, 1e-5)

    def distinct_from_counts(self, unique, grams, tokens):
        import numpy as np

        return np.maximum(unique, 1e-12) / np.maximum(grams, 1e-5)


@register_metric("distinct", "concat")
class ConcatDistinct(CorpusDistinct):
    description = "C3 DHAP/MSP: responses concatenated (n-grams cross boundaries), unique / total tokens"
    source = "zhengyima/DHAP@5ec160f:evaluate.py:41-53"

    def aggregate(self, stats: Sequence) -> dict[str, float]:
        stream = [t for s in stats for t in s]
        return {f"dist-{n}": _ratio_or_zero(len(set(ngram_list(stream, n))), len(stream))
                for n in range(1, self.options.n + 1)}

    def resampling_form(self, stats_a: Sequence, stats_b: Sequence):
        return None  # n-grams cross responses: resamples are re-aggregated


@register_metric("distinct", "per_response")
class PerResponseNgramDistinct(PerResponseDistinct):
    description = "C4 IDL: unique / all n-grams per response (0 if none), mean over responses"
    source = "steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:20-28"
    default_tokenizer = "treebank"

    def ratio(self, grams: list[tuple]) -> float:
        return _ratio_or_zero(len(set(grams)), len(grams))


@register_metric("distinct", "parlai_intra")
class ParlaiIntraDistinct(PerResponseDistinct):
    description = "C5 ParlAI intradistinct: per-response types / tokens, mean"
    source = "facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:799-851"
    default_tokenizer = "parlai"

    def ratio(self, grams: list[tuple]) -> float:
        return max(len(set(grams)), 1e-12) / max(len(grams), 1e-5)


@register_metric("distinct", "clv_s")
class ClvSampleDistinct(PerResponseDistinct):
    description = "C6 CLV s-distinct: per sample over its sampled candidates ('samples'), mean"
    source = "Toyhom/CLV@a4c7bfe:Metrics.py:94-112"
    requires = ("samples",)

    def item_stats(self, record: Record) -> list[float]:
        samples = [self.tok(s) for s in (record.samples or [record.response])]
        return [_ratio_or_zero(len(set(g := [x for s in samples for x in ngram_list(s, n)])), len(g))
                for n in range(1, self.options.n + 1)]
