"""Distinct-n in the six published definitions C1–C6.

The same outputs give Dist-1 = 85.40 per response (C4, IDL) and 1.90 at corpus level (C1, CLV,
MORPHEUS) — the variant name is part of every reported number. Corpus variants keep each
response's tokens as its statistics, so any resample of items is re-aggregated exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..records import Record
from .base import MeanOfItems, Metric, int_option, option, register_metric


def _ngrams(tokens: Sequence, n: int) -> list[tuple]:
    return list(zip(*(tokens[i:] for i in range(n)))) if len(tokens) >= n else []


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
        return [self.ratio(_ngrams(tokens, n)) for n in range(1, self.options.n + 1)]

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
            total = 0
            for s in stats:
                grams = _ngrams(s, n)
                unique.update(grams)
                total += len(grams)
            out[f"dist-{n}"] = self.ratio(len(unique), total, tokens)
        return out

    def ratio(self, unique: int, grams: int, tokens: int) -> float:
        """Dist-n from the corpus' distinct n-grams, all n-grams and tokens."""
        return _ratio_or_zero(unique, grams)

    def resampling_form(self, stats_a: Sequence, stats_b: Sequence):
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
        return {f"dist-{n}": _ratio_or_zero(len(set(_ngrams(stream, n))), len(stream))
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
        return [_ratio_or_zero(len(set(g := [x for s in samples for x in _ngrams(s, n)])), len(g))
                for n in range(1, self.options.n + 1)]


#: Resample rows per sparse product in :class:`DistinctForm` (bounds the dense resamples x types block).
_DISTINCT_ROWS = 64


def _split_types(incidences: list, sub: Sequence[int] | None = None):
    """Columns held by exactly one (item, side) slot → per-item counts; the rest → one sparse types x items matrix
    per side. ``incidences``: item x type csr matrices (one per side) over the same columns."""
    import numpy as np

    slots = sum(np.asarray(m.sum(axis=0)).ravel() for m in incidences)
    single = np.flatnonzero(slots == 1) if sub is None else np.intersect1d(sub, np.flatnonzero(slots == 1))
    multi = np.flatnonzero(slots > 1) if sub is None else np.intersect1d(sub, np.flatnonzero(slots > 1))
    per_item = [np.asarray(m[:, single].sum(axis=1)).ravel() for m in incidences]
    multi_t = [m[:, multi].T.tocsr() for m in incidences]
    return per_item, multi_t


class DistinctForm:
    """Exact corpus Distinct on resamples (conventions ``corpus``, ``paa``, ``parlai_inter``).

    The distinct n-grams of a resampled corpus are the types held by at least one selected response. Types held by
    one response only are present exactly when it is selected (a linear count); the others are counted through a
    sparse types x items incidence matrix, ``(incidence @ selection) > 0``. For AR, a type held by both systems'
    responses to the same item is present in X and Y whatever the swap, and is counted once.
    """

    def __init__(self, metric: CorpusDistinct, stats_a: Sequence, stats_b: Sequence):
        import numpy as np
        from scipy.sparse import csr_matrix

        self.metric, self.n = metric, metric.options.n
        vocab: dict = {}
        items = len(stats_a)
        self.grams = [np.zeros((items, self.n)), np.zeros((items, self.n))]
        self.tokens = [np.array([len(t) for t in side], dtype=np.float64) for side in (stats_a, stats_b)]
        self.ar_parts, self.bs_parts = [], []
        for k in range(self.n):
            sets = []
            for side, stats in enumerate((stats_a, stats_b)):
                side_sets = []
                for i, toks in enumerate(stats):
                    grams = _ngrams(toks, k + 1)
                    self.grams[side][i, k] = len(grams)
                    side_sets.append({vocab.setdefault(g, len(vocab)) for g in grams})
                sets.append(side_sets)
            width = len(vocab)
            inc = [csr_matrix((np.ones(sum(map(len, ss))), ([i for i, s_ in enumerate(ss) for _ in s_],
                                                              [g for s_ in ss for g in s_])), shape=(items, width))
                   for ss in sets]
            fixed = set().union(*(sa & sb for sa, sb in zip(*sets)))
            moving = np.setdiff1d(np.arange(width), np.fromiter(fixed, dtype=np.int64, count=len(fixed)))
            used = np.flatnonzero(np.asarray((inc[0] + inc[1]).sum(axis=0)).ravel() > 0)
            moving = np.intersect1d(moving, used)
            self.ar_parts.append((len(fixed), *_split_types(inc, moving)))
            self.bs_parts.append([_split_types([m]) for m in inc])
            vocab.clear()

    def _scores(self, unique: list, grams, tokens) -> dict:
        return {f"dist-{k + 1}": self.metric.distinct_from_counts(unique[k], grams[:, k], tokens)
                for k in range(self.n)}

    @staticmethod
    def _present(multi_t, selection) -> "np.ndarray":
        """Per resample row: how many of the matrix's types a selected item holds (selection: items x rows)."""
        import numpy as np

        return np.concatenate([np.count_nonzero(multi_t @ selection[:, i:i + _DISTINCT_ROWS] > 0.5, axis=0)
                               for i in range(0, selection.shape[1], _DISTINCT_ROWS)])

    def ar(self, swap):
        keep = 1.0 - swap  # X keeps A where the mask is 0
        unique_x, unique_y = [], []
        for fixed, (single_a, single_b), (multi_a, multi_b) in self.ar_parts:
            unique_x.append(fixed + keep @ single_a + swap @ single_b + self._present_pair(multi_a, multi_b, keep, swap))
            unique_y.append(fixed + swap @ single_a + keep @ single_b + self._present_pair(multi_a, multi_b, swap, keep))
        grams_a, grams_b = self.grams
        tokens_a, tokens_b = self.tokens
        x = self._scores(unique_x, keep @ grams_a + swap @ grams_b, keep @ tokens_a + swap @ tokens_b)
        y = self._scores(unique_y, swap @ grams_a + keep @ grams_b, swap @ tokens_a + keep @ tokens_b)
        return x, y

    @staticmethod
    def _present_pair(multi_a, multi_b, from_a, from_b) -> "np.ndarray":
        import numpy as np

        out = []
        for i in range(0, from_a.shape[0], _DISTINCT_ROWS):
            held = multi_a @ from_a[i:i + _DISTINCT_ROWS].T + multi_b @ from_b[i:i + _DISTINCT_ROWS].T
            out.append(np.count_nonzero(held > 0.5, axis=0))
        return np.concatenate(out)

    def bootstrap(self, draws):
        for weights in draws.weight_chunks():
            selected = (weights > 0).astype(weights.dtype)
            out = []
            for side in (0, 1):
                unique = []
                for parts in self.bs_parts:
                    (single,), (multi,) = parts[side]
                    unique.append(selected @ single + self._present(multi, selected.T))
                out.append(self._scores(unique, weights @ self.grams[side], weights @ self.tokens[side]))
            yield out[0], out[1]
