"""Vectorised resampling behind the paired tests and bootstrap intervals of :mod:`pdg_eval.stats`.

A resample of a paired comparison of systems A and B is a pair of pseudo-systems:

- approximate randomization (AR): X takes B's statistics where the swap mask is 1 and A's elsewhere, Y the opposite
  (Riezler & Maxwell 2005; the mask is drawn as sacreBLEU draws it, mjpost/sacrebleu ``significance.py``);
- paired bootstrap: both systems resampled with the same item indices (Koehn 2004), i.e. weighted by the same counts.

A *form* scores every resample of a chunk at once, exactly as ``metric.aggregate`` would:

- ``LinearForm`` (:mod:`pdg_eval.metrics.forms`): metrics whose scores are a function of summed per-item vectors
  (means of sentence-level values, corpus BLEU, token PPL): one BLAS product ``weights @ matrix`` and the metric's
  own formula (``Metric.linear_matrix`` / ``Metric.scores_from_sums``);
- ``DistinctForm`` (:mod:`pdg_eval.metrics.forms`): corpus Distinct, whose distinct n-grams are counted through a
  sparse item x n-gram incidence matrix;
- :class:`LoopForm`: any other metric (self-BLEU, MORPHEUS P-Co, ...), each resample re-aggregated one by one.

Every form gives the same numbers as the loop (tested on ConvAI2 for every metric), so the vectorised path changes
the cost, never the p-value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Protocol, Sequence

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    from .metrics.base import Metric, Stats

KINDS = ("ar", "bootstrap")
#: Rows per chunk; even, so chunked bootstrap draws equal one draw of all rows (numpy consumes 64-bit words).
CHUNK_ROWS = 512
Scores = dict[str, np.ndarray]
#: float64 weight chunks of one draw kept for reuse up to this size (10,000 AR shuffles of 7,801 items: 624 MB)
CACHED_WEIGHT_BYTES = 1 << 30


@dataclass
class Draws:
    """The random draws of one test: an AR swap mask or bootstrap indices, ``resamples`` x ``n_items``, seeded.

    One ``Draws`` can serve every system pair and metric of a comparison (as sacreBLEU shares its draws).
    """

    kind: str
    n_items: int
    resamples: int
    seed: int
    _mask: np.ndarray | None = field(default=None, repr=False)
    _counts: np.ndarray | None = field(default=None, repr=False)
    _chunks: list[np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"resampling kind must be one of {', '.join(KINDS)}")
        if self.resamples < 1:
            raise ConfigError("resamples must be >= 1")
        if self.n_items < 1:
            raise ConfigError("paired tests need at least one item")

    @property
    def mask(self) -> np.ndarray:
        """AR swap mask (bool), drawn at once: ``default_rng(seed).integers(2, size=(R, N), dtype=bool)``."""
        assert self.kind == "ar"
        if self._mask is None:
            self._mask = np.random.default_rng(self.seed).integers(2, size=(self.resamples, self.n_items), dtype=bool)
        return self._mask

    def index_chunks(self) -> Iterator[np.ndarray]:
        """Bootstrap indices, chunk by chunk: together ``default_rng(seed).choice(N, size=(R, N))``."""
        assert self.kind == "bootstrap"
        rng = np.random.default_rng(self.seed)
        for start in range(0, self.resamples, CHUNK_ROWS):
            rows = min(CHUNK_ROWS, self.resamples - start)
            yield rng.choice(self.n_items, size=(rows, self.n_items), replace=True)

    @property
    def counts(self) -> np.ndarray:
        """How often each item is drawn in each bootstrap resample (uint16)."""
        if self._counts is None:
            parts = []
            for idx in self.index_chunks():
                rows = idx.shape[0]
                flat = (idx + (np.arange(rows) * self.n_items)[:, None]).ravel()
                parts.append(np.bincount(flat, minlength=rows * self.n_items).reshape(rows, self.n_items)
                             .astype(np.uint16))
            self._counts = np.concatenate(parts)
        return self._counts

    def weight_chunks(self) -> Iterator[np.ndarray]:
        """Float64 chunks of the swap mask (AR) or of the counts (bootstrap); kept after the first pass when they
        fit :data:`CACHED_WEIGHT_BYTES` (one draw serves every pair and metric of a comparison)."""
        if self._chunks is not None:
            yield from self._chunks
            return
        source = self.mask if self.kind == "ar" else self.counts
        keep = self.resamples * self.n_items * 8 <= CACHED_WEIGHT_BYTES
        chunks = []
        for start in range(0, self.resamples, CHUNK_ROWS):
            chunk = source[start:start + CHUNK_ROWS].astype(np.float64)
            if keep:
                chunks.append(chunk)
            yield chunk
        if keep:
            self._chunks = chunks

    @property
    def signature(self) -> str:
        return f"resamples:{self.resamples}|seed:{self.seed}"


class PairForm(Protocol):
    """Scores of the resampled pseudo-systems of one system pair, all keys, one chunk at a time."""

    def ar(self, swap: np.ndarray) -> tuple[Scores, Scores]:
        """Scores of X (B swapped in where ``swap`` is 1) and Y (A swapped in there), per resample row."""

    def bootstrap(self, draws: Draws) -> Iterator[tuple[Scores, Scores]]:
        """Scores of A and B under each bootstrap resample, chunk by chunk."""


def _concat(chunks: list[Scores]) -> Scores:
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


class LoopForm:
    """Exact for any metric: each resample's statistics re-aggregated by ``metric.aggregate`` (slow)."""

    def __init__(self, metric: "Metric", stats_a: Sequence["Stats"], stats_b: Sequence["Stats"]):
        self.metric, self.a, self.b = metric, list(stats_a), list(stats_b)

    def _scores(self, rows: list[dict[str, float]]) -> Scores:
        return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in self.metric.keys}

    def ar(self, swap: np.ndarray) -> tuple[Scores, Scores]:
        xs, ys = [], []
        for row in swap:
            xs.append(self.metric.aggregate([b if s else a for a, b, s in zip(self.a, self.b, row)]))
            ys.append(self.metric.aggregate([a if s else b for a, b, s in zip(self.a, self.b, row)]))
        return self._scores(xs), self._scores(ys)

    def bootstrap(self, draws: Draws) -> Iterator[tuple[Scores, Scores]]:
        for idx in draws.index_chunks():  # item order kept: order-dependent metrics see the drawn order
            yield (self._scores([self.metric.aggregate([self.a[i] for i in row]) for row in idx]),
                   self._scores([self.metric.aggregate([self.b[i] for i in row]) for row in idx]))


ENGINES = ("auto", "loop")


def pair_form(metric: "Metric", stats_a: Sequence["Stats"], stats_b: Sequence["Stats"], engine: str = "auto") -> PairForm:
    """The fastest exact form for ``metric`` (``engine="loop"`` forces re-aggregation, for checks)."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}")
    if engine == "auto":
        form = metric.resampling_form(stats_a, stats_b)
        if form is not None:
            return form
    return LoopForm(metric, stats_a, stats_b)


def is_vectorised(metric: "Metric", stats: Sequence["Stats"]) -> bool:
    """Whether ``metric`` has a vectorised form for statistics like ``stats`` (probed on two items)."""
    return not isinstance(pair_form(metric, stats[:2], stats[:2]), LoopForm)


def ar_scores(form: PairForm, draws: Draws) -> tuple[Scores, Scores]:
    """Scores of X and Y over all AR resamples."""
    xs, ys = [], []
    for swap in draws.weight_chunks():
        x, y = form.ar(swap)
        xs.append(x)
        ys.append(y)
    return _concat(xs), _concat(ys)


def bootstrap_scores(form: PairForm, draws: Draws) -> tuple[Scores, Scores]:
    """Scores of A and B over all bootstrap resamples."""
    parts = list(form.bootstrap(draws))
    return _concat([p[0] for p in parts]), _concat([p[1] for p in parts])
