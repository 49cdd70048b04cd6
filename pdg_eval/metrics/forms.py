"""Vectorised forms of metrics for resampling (:mod:`pdg_eval.resampling`): each scores every resample of a chunk
at once, exactly as ``metric.aggregate`` would.

- :class:`LinearForm`: scores that are a function of weighted column sums of a per-item matrix
  (``Metric.linear_matrix`` / ``Metric.scores_from_sums``);
- :class:`DistinctForm`: corpus Distinct, through sparse item x n-gram incidence matrices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from .ngrams import ngram_list

if TYPE_CHECKING:
    from ..resampling import Draws, Scores
    from .base import Metric
    from .distinct import CorpusDistinct


class LinearForm:
    """Scores from weighted column sums of a per-item matrix (``Metric.linear_matrix``)."""

    def __init__(self, metric: "Metric", matrix_a: np.ndarray, matrix_b: np.ndarray):
        self.metric = metric
        self.a, self.b = matrix_a, matrix_b
        self.diff = matrix_b - matrix_a
        self.sum_a, self.sum_b = matrix_a.sum(axis=0), matrix_b.sum(axis=0)

    def ar(self, swap: np.ndarray) -> tuple[Scores, Scores]:
        moved = swap @ self.diff
        return self.metric.scores_from_sums(self.sum_a + moved), self.metric.scores_from_sums(self.sum_b - moved)

    def bootstrap(self, draws: Draws) -> Iterator[tuple[Scores, Scores]]:
        for weights in draws.weight_chunks():
            yield self.metric.scores_from_sums(weights @ self.a), self.metric.scores_from_sums(weights @ self.b)


#: Resample rows per sparse product in :class:`DistinctForm` (bounds the dense resamples x types block).
_DISTINCT_ROWS = 64


def _split_types(incidences: list, sub: Sequence[int] | None = None):
    """Columns held by exactly one (item, side) slot → per-item counts; the rest → one sparse types x items matrix
    per side. ``incidences``: item x type csr matrices (one per side) over the same columns."""
    slots = sum(np.asarray(m.sum(axis=0)).ravel() for m in incidences)
    single = np.flatnonzero(slots == 1) if sub is None else np.intersect1d(sub, np.flatnonzero(slots == 1))
    multi = np.flatnonzero(slots > 1) if sub is None else np.intersect1d(sub, np.flatnonzero(slots > 1))
    per_item = [np.asarray(m[:, single].sum(axis=1)).ravel() for m in incidences]
    multi_t = [m[:, multi].T.tocsr().astype(np.float32) for m in incidences]
    return per_item, multi_t


class DistinctForm:
    """Exact corpus Distinct on resamples (conventions ``corpus``, ``paa``, ``parlai_inter``).

    The distinct n-grams of a resampled corpus are the types held by at least one selected response. Types held by
    one response only are present exactly when it is selected (a linear count); the others are counted through a
    sparse types x items incidence matrix, ``(incidence @ selection) > 0``. For AR, a type held by both systems'
    responses to the same item is present in X and Y whatever the swap, and is counted once.
    """

    def __init__(self, metric: "CorpusDistinct", stats_a: Sequence, stats_b: Sequence):
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
                    grams = ngram_list(toks, k + 1)
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
            singles, multis = _split_types(inc, moving)
            holders = [np.asarray(m.sum(axis=1), dtype=np.float32) for m in multis]  # per type, its items per side
            self.ar_parts.append((len(fixed), singles, multis, holders))
            self.bs_parts.append([_split_types([m]) for m in inc])
            vocab.clear()

    def _scores(self, unique: list, grams, tokens) -> dict:
        return {f"dist-{k + 1}": self.metric.distinct_from_counts(unique[k], grams[:, k], tokens)
                for k in range(self.n)}

    @staticmethod
    def _blocks(selection) -> list["np.ndarray"]:
        """``selection`` (rows x items, 0/1) as C-contiguous items x ``_DISTINCT_ROWS`` float32 blocks, made once per
        chunk: the sparse products read them without copying (0/1 and counts of items are exact in float32)."""
        return [np.ascontiguousarray(selection[i:i + _DISTINCT_ROWS].T, dtype=np.float32)
                for i in range(0, selection.shape[0], _DISTINCT_ROWS)]

    @staticmethod
    def _present(multi_t, blocks) -> "np.ndarray":
        """Per resample row: how many of the matrix's types a selected item holds (blocks: :meth:`_blocks`)."""
        return np.concatenate([np.count_nonzero(multi_t @ block > 0.5, axis=0) for block in blocks])

    def ar(self, swap):
        keep = 1.0 - swap  # X keeps A where the mask is 0
        swap_blocks = self._blocks(swap)
        unique_x, unique_y = [], []
        for fixed, (single_a, single_b), multis, holders in self.ar_parts:
            present_x, present_y = self._present_swapped(multis, holders, swap_blocks)
            unique_x.append(fixed + keep @ single_a + swap @ single_b + present_x)
            unique_y.append(fixed + swap @ single_a + keep @ single_b + present_y)
        grams_a, grams_b = self.grams
        tokens_a, tokens_b = self.tokens
        x = self._scores(unique_x, keep @ grams_a + swap @ grams_b, keep @ tokens_a + swap @ tokens_b)
        y = self._scores(unique_y, swap @ grams_a + keep @ grams_b, swap @ tokens_a + keep @ tokens_b)
        return x, y

    @staticmethod
    def _present_swapped(multis, holders, swap_blocks) -> tuple["np.ndarray", "np.ndarray"]:
        """Per resample row, the types held in X (A's items where not swapped, B's where swapped) and in Y (the
        opposite). With S_a = multi_a @ swap, a type's holders in X are ``rowsum(multi_a) - S_a + S_b`` and in Y
        ``S_a + rowsum(multi_b) - S_b``: two sparse products per block serve both (integer counts, exact)."""
        (multi_a, multi_b), (held_a, held_b) = multis, holders
        xs, ys = [], []
        for block in swap_blocks:
            from_a, from_b = multi_a @ block, multi_b @ block
            xs.append(np.count_nonzero(held_a - from_a + from_b > 0.5, axis=0))
            ys.append(np.count_nonzero(from_a + held_b - from_b > 0.5, axis=0))
        return np.concatenate(xs), np.concatenate(ys)

    def bootstrap(self, draws):
        for weights in draws.weight_chunks():
            selected = (weights > 0).astype(weights.dtype)
            blocks = self._blocks(selected)
            out = []
            for side in (0, 1):
                unique = []
                for parts in self.bs_parts:
                    (single,), (multi,) = parts[side]
                    unique.append(selected @ single + self._present(multi, blocks))
                out.append(self._scores(unique, weights @ self.grams[side], weights @ self.tokens[side]))
            yield out[0], out[1]
