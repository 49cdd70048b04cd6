"""Paired significance tests on the per-item sufficient statistics of any metric.

Because every metric re-aggregates any multiset of its item statistics exactly (:mod:`pdg_eval.metrics.base`),
resampling tests are exact for corpus-level metrics too (corpus BLEU, Distinct, self-BLEU): each resample is
scored by the metric's own ``aggregate``, never approximated by per-item averages.

- :func:`paired_approximate_randomization`: swap the two systems' statistics item by item with probability 1/2
  (Riezler & Maxwell 2005; sacreBLEU ``--paired-ar``, mjpost/sacrebleu ``significance.py``);
- :func:`paired_bootstrap`: resample items with replacement, the same indices for both systems (Koehn 2004;
  sacreBLEU ``--paired-bs``), with a percentile confidence interval of the difference;
- :func:`paired_t_test`, :func:`wilcoxon_signed_rank`: on per-item values (IDL's t-test protocol), via scipy;
- :func:`mcnemar_exact`: exact McNemar test on paired 0/1 outcomes (Hits@1), via scipy's binomial test;
- :func:`adjust`: Holm (default) or Benjamini–Hochberg over a family of p-values, via statsmodels.

Resampling p-values are ``(c + 1) / (R + 1)``, ``c`` counting resamples at least as extreme as the observed
difference (``>=``; two identical systems then get p = 1). ``count="sacrebleu"`` counts strictly greater ones, as
sacreBLEU does (there two identical systems get the smallest possible p). The method, count rule, number of
resamples and seed are part of every result's signature.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Sequence

from . import __version__
from .errors import ConfigError
from .metrics.base import Metric, Stats
from .resampling import Draws, ar_scores, bootstrap_scores, pair_form

COUNT_RULES = ("ge", "sacrebleu")


@dataclass(frozen=True)
class PairedResult:
    """The outcome of one paired test of system B against baseline A on one metric key."""

    test: str
    key: str
    n_items: int
    score_a: float
    score_b: float
    p_value: float
    resamples: int | None = None
    seed: int | None = None
    count: str | None = None
    ci: tuple[float, float] | None = None  # of score_b - score_a

    @property
    def delta(self) -> float:
        return self.score_b - self.score_a

    @property
    def signature(self) -> str:
        parts = [f"test:{self.test}", f"key:{self.key}", f"n:{self.n_items}"]
        if self.resamples is not None:
            parts += [f"resamples:{self.resamples}", f"seed:{self.seed}", f"count:{self.count}"]
        return "|".join(parts + [f"version:pdg-eval-{__version__}"])


def _check(stats_a: Sequence[Stats], stats_b: Sequence[Stats], resamples: int, count: str) -> None:
    if len(stats_a) != len(stats_b):
        raise ConfigError(f"paired tests need the same items: {len(stats_a)} vs {len(stats_b)} statistics")
    if not stats_a:
        raise ConfigError("paired tests need at least one item")
    if resamples < 1:
        raise ConfigError("resamples must be >= 1")
    if count not in COUNT_RULES:
        raise ConfigError(f"count must be one of {', '.join(COUNT_RULES)}")


def _p_value(extreme: int, resamples: int) -> float:
    return (extreme + 1) / (resamples + 1)


def _count_extreme(values, observed: float, count: str) -> int:
    import numpy as np

    if count == "sacrebleu":
        return int(np.sum(values > observed))
    return int(np.sum(values >= observed - 1e-12 * max(1.0, observed)))  # float noise is not "less extreme"


def paired_tests(metric: Metric, stats_a: Sequence[Stats], stats_b: Sequence[Stats], test: str = "ar",
                 resamples: int = 10_000, seed: int = 12345, count: str = "ge", confidence: float = 0.95,
                 engine: str = "auto", draws: Draws | None = None) -> dict[str, PairedResult]:
    """Paired AR (``test="ar"``) or paired bootstrap (``"bootstrap"``) of B against A on every key of ``metric``.

    ``draws`` lets many pairs and metrics share one set of random draws; ``engine="loop"`` re-aggregates each
    resample with ``metric.aggregate`` instead of the vectorised form (same numbers, for checks).
    """
    import numpy as np

    _check(stats_a, stats_b, resamples, count)
    kind = "ar" if test == "ar" else "bootstrap" if test in ("bootstrap", "bs") else None
    if kind is None:
        raise ConfigError("test must be 'ar' or 'bootstrap'")
    if draws is None:
        draws = Draws(kind, len(stats_a), resamples, seed)
    elif (draws.kind, draws.n_items) != (kind, len(stats_a)):
        raise ConfigError(f"draws are {draws.kind} over {draws.n_items} items; this test needs {kind} over {len(stats_a)}")
    observed_a, observed_b = metric.aggregate(stats_a), metric.aggregate(stats_b)
    form = pair_form(metric, stats_a, stats_b, engine)
    out = {}
    if kind == "ar":
        x, y = ar_scores(form, draws)
        for key in metric.keys:
            observed = abs(observed_b[key] - observed_a[key])
            extreme = _count_extreme(np.abs(y[key] - x[key]), observed, count)
            out[key] = PairedResult("paired_ar", key, len(stats_a), observed_a[key], observed_b[key],
                                    _p_value(extreme, draws.resamples), draws.resamples, draws.seed, count)
        return out
    a, b = bootstrap_scores(form, draws)
    tail = (1 - confidence) / 2
    for key in metric.keys:
        diffs = b[key] - a[key]
        centred = np.abs(diffs) - np.abs(diffs).mean()  # sacreBLEU's rule: the null distribution of |B - A|
        observed = abs(observed_b[key] - observed_a[key])
        extreme = int(np.sum(centred > observed)) if count == "sacrebleu" else int(np.sum(centred >= observed))
        ci = (float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail)))
        out[key] = PairedResult("paired_bootstrap", key, len(stats_a), observed_a[key], observed_b[key],
                                _p_value(extreme, draws.resamples), draws.resamples, draws.seed, count, ci)
    return out


def paired_approximate_randomization(metric: Metric, stats_a: Sequence[Stats], stats_b: Sequence[Stats], key: str,
                                     resamples: int = 10_000, seed: int = 12345, count: str = "ge",
                                     engine: str = "auto") -> PairedResult:
    """Two-sided paired approximate randomization test of ``|score(B) - score(A)|`` on ``key``."""
    return paired_tests(metric, stats_a, stats_b, "ar", resamples, seed, count, engine=engine)[key]


def paired_bootstrap(metric: Metric, stats_a: Sequence[Stats], stats_b: Sequence[Stats], key: str,
                     resamples: int = 1000, seed: int = 12345, count: str = "ge",
                     confidence: float = 0.95, engine: str = "auto") -> PairedResult:
    """Paired bootstrap: p from the centred resampled ``|B - A|`` (sacreBLEU's rule), percentile CI of ``B - A``."""
    return paired_tests(metric, stats_a, stats_b, "bootstrap", resamples, seed, count, confidence, engine)[key]


def paired_permutation(metric: Metric, stats_a: Sequence[Stats], stats_b: Sequence[Stats], key: str,
                       resamples: int = 10_000, seed: int = 12345) -> PairedResult:
    """Paired permutation (sign-flip) test of the mean per-item difference, for sentence-level metrics.

    Swapping an item's two outputs flips the sign of its difference, so on a mean this is the approximate
    randomization test; it is named apart because it needs per-item values (corpus metrics: use AR)."""
    _item_values(metric, stats_a[:1], key)
    result = paired_approximate_randomization(metric, stats_a, stats_b, key, resamples, seed)
    return PairedResult("paired_permutation", key, result.n_items, result.score_a, result.score_b, result.p_value,
                        resamples, seed, result.count)


def bootstrap_intervals(metric: Metric, stats: Sequence[Stats], resamples: int = 1000, seed: int = 12345,
                        confidence: float = 0.95, draws: Draws | None = None) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence interval of every key of one system's score."""
    import numpy as np

    draws = draws or Draws("bootstrap", len(stats), resamples, seed)
    scores, _ = bootstrap_scores(pair_form(metric, stats, stats), draws)
    tail = (1 - confidence) / 2
    return {k: (float(np.quantile(v, tail)), float(np.quantile(v, 1 - tail))) for k, v in scores.items()}


def _item_values(metric: Metric, stats: Sequence[Stats], key: str) -> list[float]:
    values = [metric.item_values(s) for s in stats]
    if any(v is None for v in values):
        raise ConfigError(f"{metric.label} is corpus-level (no per-item values): use the resampling tests")
    return [float(v[key]) for v in values]  # type: ignore[index]


def _per_item_test(name: str, metric: Metric, stats_a: Sequence[Stats], stats_b: Sequence[Stats], key: str,
                   p_of) -> PairedResult:
    _check(stats_a, stats_b, 1, "ge")
    a, b = _item_values(metric, stats_a, key), _item_values(metric, stats_b, key)
    p = 1.0 if a == b else float(p_of(b, a))
    return PairedResult(name, key, len(a), metric.aggregate(stats_a)[key], metric.aggregate(stats_b)[key], p)


def paired_t_test(metric: Metric, stats_a: Sequence[Stats], stats_b: Sequence[Stats], key: str) -> PairedResult:
    """Two-sided paired t-test on per-item values (scipy.stats.ttest_rel)."""
    from scipy.stats import ttest_rel

    return _per_item_test("paired_t", metric, stats_a, stats_b, key, lambda b, a: ttest_rel(b, a).pvalue)


def wilcoxon_signed_rank(metric: Metric, stats_a: Sequence[Stats], stats_b: Sequence[Stats], key: str) -> PairedResult:
    """Two-sided Wilcoxon signed-rank test on per-item values (scipy.stats.wilcoxon, zero differences dropped)."""
    from scipy.stats import wilcoxon

    return _per_item_test("wilcoxon", metric, stats_a, stats_b, key,
                          lambda b, a: wilcoxon(b, a, zero_method="wilcox").pvalue)


def mcnemar_exact(outcomes_a: Sequence[float], outcomes_b: Sequence[float], key: str = "hits@1") -> PairedResult:
    """Exact McNemar test on paired 0/1 outcomes: a binomial test on the discordant pairs."""
    from scipy.stats import binomtest

    if len(outcomes_a) != len(outcomes_b) or not outcomes_a:
        raise ConfigError("McNemar needs the same, non-empty items for both systems")
    if any(x not in (0, 1) for x in (*outcomes_a, *outcomes_b)):
        raise ConfigError("McNemar needs 0/1 outcomes (e.g. hits@1 with ties=miss or stable)")
    only_b = sum(1 for a, b in zip(outcomes_a, outcomes_b) if b and not a)
    only_a = sum(1 for a, b in zip(outcomes_a, outcomes_b) if a and not b)
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_b, only_a + only_b, 0.5).pvalue)
    n = len(outcomes_a)
    return PairedResult("mcnemar_exact", key, n, sum(outcomes_a) / n, sum(outcomes_b) / n, p)


def adjust(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Family-wise (Holm) or false-discovery-rate (Benjamini–Hochberg, ``fdr_bh``) adjusted p-values."""
    from statsmodels.stats.multitest import multipletests

    if method not in ("holm", "fdr_bh"):
        raise ConfigError("adjust method must be 'holm' or 'fdr_bh'")
    if not p_values:
        return []
    # statsmodels' Holm branch calls gc.collect(), which walks every object of a process holding per-item
    # statistics (0.3 s a call at 10 x 7,801 items); frozen objects are skipped by that collection.
    gc.freeze()
    try:
        return [float(p) for p in multipletests(list(p_values), method=method)[1]]
    finally:
        gc.unfreeze()
