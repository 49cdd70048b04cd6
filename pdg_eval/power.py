"""Power analysis and minimum detectable effects: how many test items, or how many
human judgments, are needed to detect a given difference between two systems.

- :func:`paired_sample_size`, :func:`minimum_detectable_effect`: two-sided paired t-test, i.e. a one-sample t-test
  on per-item differences B - A (noncentral t, via statsmodels ``TTestPower``; Cohen 1988, ch. 2);
- :func:`pilot_from_differences`: n, mean and sample SD (ddof=1) of pilot differences, to feed the above;
- :func:`corpus_sample_size`, :func:`corpus_mde`: corpus-level metrics (corpus BLEU, Distinct), from the bootstrap
  standard error of the corpus-level difference on a pilot, assuming ``se ∝ 1/sqrt(n)`` (normal approximation);
- :func:`pairwise_judgments`: pairwise human evaluation (Win/Tie/Lose, as IDL reports it), by the exact power of a
  two-sided binomial sign test on the decisive (non-tie) judgments.

All effects are in the raw units of the values compared (0-1 for most metrics, not the x100 of the tables).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy.stats import binom, norm
from statsmodels.stats.power import TTestPower

from .errors import ConfigError

STABLE_WINDOW = 20  # pairwise_judgments: power must hold for n .. n + STABLE_WINDOW


def _check_levels(alpha: float, power: float) -> None:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise ConfigError(f"power must be in (0, 1), got {power}")


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive number, got {value}")


def _check_delta(delta: float) -> None:
    if not math.isfinite(delta) or delta == 0:
        raise ConfigError(f"the difference to detect (delta) must be non-zero, got {delta}")


def paired_sample_size(sd_diff: float, delta: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Smallest number of items for which a two-sided paired t-test at level ``alpha`` detects a true mean
    difference ``delta`` with probability ``power``, given the SD of per-item differences ``sd_diff``.

    Exact noncentral-t power (statsmodels ``TTestPower.solve_power``, effect size ``|delta| / sd_diff``),
    rounded up; at least 2 (a t-test needs two items)."""
    _check_positive("sd of differences", sd_diff)
    _check_delta(delta)
    _check_levels(alpha, power)
    effect, ttest = abs(delta) / sd_diff, TTestPower()
    if ttest.power(effect, nobs=2, alpha=alpha, alternative="two-sided") >= power:
        return 2  # the solver cannot bracket a root below 2 items
    n = float(ttest.solve_power(effect_size=effect, alpha=alpha, power=power, alternative="two-sided"))
    if not math.isfinite(n):
        raise ConfigError(f"no sample size found for effect size {effect:.3g} (delta / sd)")
    return math.ceil(n - 1e-9)


def minimum_detectable_effect(sd_diff: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference (in the units of ``sd_diff``) that a two-sided paired t-test on ``n`` items
    detects with probability ``power`` (statsmodels ``TTestPower.solve_power`` for the effect size, times SD)."""
    _check_positive("sd of differences", sd_diff)
    if n < 2:
        raise ConfigError(f"a paired t-test needs at least 2 items, got {n}")
    _check_levels(alpha, power)
    es = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    return float(es) * sd_diff


def pilot_from_differences(diffs: Sequence[float]) -> tuple[int, float, float]:
    """``(n, mean, sd)`` of pilot per-item differences, ``sd`` the sample SD (ddof=1)."""
    values = np.asarray(diffs, dtype=float)
    if values.size < 2:
        raise ConfigError(f"a pilot needs at least 2 paired items, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise ConfigError("pilot differences must be finite numbers")
    sd = float(np.std(values, ddof=1))
    if values.min() == values.max() or not sd > 0:  # identical values can leave a rounding-error SD
        raise ConfigError("the pilot differences have zero variance (identical on every item); "
                          "their SD cannot size a test")
    return int(values.size), float(np.mean(values)), sd


def _z_sum(alpha: float, power: float) -> float:
    return float(norm.ppf(1 - alpha / 2) + norm.ppf(power))


def corpus_sample_size(se_pilot: float, n_pilot: int, delta: float, alpha: float = 0.05,
                       power: float = 0.8) -> int:
    """Items needed to detect a difference ``delta`` in a corpus-level metric, given the bootstrap standard error
    ``se_pilot`` of the corpus-level difference B - A measured on a pilot of ``n_pilot`` items.

    Assumes the standard error shrinks as ``1/sqrt(n)`` (true of means and, asymptotically, of smooth corpus
    statistics such as corpus BLEU) and a normal test statistic:
    ``n = ceil(n_pilot * (se_pilot * (z_{1-alpha/2} + z_power) / delta) ** 2)``. Extrapolating far beyond the
    pilot size, or from a small pilot, inherits the error of that assumption."""
    _check_positive("pilot standard error", se_pilot)
    if n_pilot < 1:
        raise ConfigError(f"the pilot needs at least 1 item, got {n_pilot}")
    _check_delta(delta)
    _check_levels(alpha, power)
    return max(1, math.ceil(n_pilot * (se_pilot * _z_sum(alpha, power) / delta) ** 2 - 1e-9))


def corpus_mde(se_pilot: float, n_pilot: int, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable corpus-level difference with ``n`` items, under the assumptions of
    :func:`corpus_sample_size`: ``se_pilot * sqrt(n_pilot / n) * (z_{1-alpha/2} + z_power)``."""
    _check_positive("pilot standard error", se_pilot)
    if n_pilot < 1 or n < 1:
        raise ConfigError(f"item counts must be at least 1, got pilot {n_pilot}, n {n}")
    _check_levels(alpha, power)
    return se_pilot * math.sqrt(n_pilot / n) * _z_sum(alpha, power)


def rejection_cutoff(n: np.ndarray | int, alpha: float) -> np.ndarray:
    """For each ``n``, the largest ``c`` such that the exact two-sided binomial test of p = 1/2 rejects for
    ``k <= c`` and ``k >= n - c`` (-1 when it never rejects).

    For p = 1/2 the pmf is symmetric, so scipy's ``binomtest`` two-sided p-value of ``k < n/2`` is
    ``2 * P(X <= k)``, and 1 at ``k = n/2``; the region is found from ``binom.ppf`` and checked on
    ``2 * binom.cdf(c, n, 1/2) <= alpha`` either side."""
    ns = np.atleast_1d(np.asarray(n, dtype=np.int64))
    c = binom.ppf(alpha / 2, ns, 0.5).astype(np.int64)  # smallest k with cdf(k) >= alpha/2
    for _ in range(3):  # settle floating-point rounding at the boundary
        c = np.where(2 * binom.cdf(c, ns, 0.5) > alpha, c - 1, c)
    for _ in range(3):
        up = c + 1
        c = np.where((2 * binom.cdf(up, ns, 0.5) <= alpha) & (2 * up < ns), up, c)
    return np.maximum(c, -1)


def binomial_power(n: np.ndarray | int, win_rate: float, alpha: float = 0.05) -> np.ndarray:
    """Exact power of the two-sided binomial test of p = 1/2 on ``n`` decisive judgments when the true share of
    wins is ``win_rate``: the binomial probability of the rejection region of :func:`rejection_cutoff`."""
    ns = np.atleast_1d(np.asarray(n, dtype=np.int64))
    c = rejection_cutoff(ns, alpha)
    low = binom.cdf(c, ns, win_rate)  # P(X <= c); 0 when c = -1
    high = binom.sf(ns - c - 1, ns, win_rate)  # P(X >= n - c)
    return np.where(c >= 0, low + high, 0.0)


def pairwise_judgments(win_rate: float, tie_rate: float = 0.0, alpha: float = 0.05, power: float = 0.8,
                       max_n: int = 100000) -> dict[str, Any]:
    """Judgments needed for a pairwise human evaluation (Win/Tie/Lose) to show that one system is preferred.

    ``win_rate`` is the true share of wins among decisive (non-tie) judgments (``W / (W + L)``), ``tie_rate`` the
    share of ties among all judgments. The test is the exact two-sided binomial (sign) test of wins against 1/2 on
    the decisive judgments (scipy ``binomtest``). Exact binomial power is saw-toothed in n, so ``decisive`` is the
    smallest n whose power is at least ``power`` for n and every n up to n + 20 ("stable" rule); ``total`` adds
    the expected ties, ``ceil(decisive / (1 - tie_rate))``; ``achieved_power`` is the power at ``decisive``."""
    if not (0 < win_rate < 1) or win_rate == 0.5:
        raise ConfigError(f"win rate among decisive judgments must be in (0, 1) and not 0.5, got {win_rate}")
    if not 0 <= tie_rate < 1:
        raise ConfigError(f"tie rate must be in [0, 1), got {tie_rate}")
    _check_levels(alpha, power)
    if max_n < 1:
        raise ConfigError(f"max_n must be at least 1, got {max_n}")
    hi = 256
    while True:
        hi = min(hi, max_n)
        ns = np.arange(1, hi + STABLE_WINDOW + 1)
        ok = binomial_power(ns, win_rate, alpha) >= power
        # stable[i]: ok for ns[i] .. ns[i] + STABLE_WINDOW
        window = np.lib.stride_tricks.sliding_window_view(ok, STABLE_WINDOW + 1).all(axis=1)
        hits = np.flatnonzero(window)
        if hits.size:
            n = int(ns[hits[0]])
            return {"decisive": n, "total": math.ceil(n / (1 - tie_rate) - 1e-9),
                    "achieved_power": float(binomial_power(n, win_rate, alpha)[0])}
        if hi >= max_n:
            raise ConfigError(f"more than {max_n} decisive judgments are needed to detect a win rate of "
                              f"{win_rate} (raise max_n)")
        hi *= 4
