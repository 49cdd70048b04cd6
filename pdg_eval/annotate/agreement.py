"""Inter-annotator agreement with an explicit level of measurement and bootstrap-over-units CIs.

* **Cohen's κ** — for more than two annotators, the mean over annotator pairs of κ on the units both rated (IDL
  reports Cohen's κ for 5 annotators). Same definition as ``sklearn.metrics.cohen_kappa_score`` (weights ``None``,
  ``linear`` or ``quadratic``), computed from confusion matrices so that bootstrap resamples are one matrix product;
  parity with scikit-learn is tested.
* **Fleiss' κ** — ``statsmodels.stats.inter_rater.fleiss_kappa`` on the units × categories count table; every unit
  needs the same number of ratings (units with another count are left out, and counted). MORPHEUS §4.3 computed it
  with ranks treated as categories: that is Fleiss' κ on a ranking study's ranks.
* **Krippendorff's α** — the ``krippendorff`` package, always called with ``level_of_measurement`` (its default,
  ``interval``, is wrong for Win/Tie/Lose labels) and the value domain.

CIs are percentile intervals over units resampled with replacement (seeded); the unit is what was rated: an item
for a pairwise study, an (item, system) pair for ranking and Likert studies. Every result carries a signature.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import ConfigError

LEVELS = ("nominal", "ordinal", "interval", "ratio")
DEFAULT_LEVEL = {"pairwise": "nominal", "ranking": "ordinal", "likert": "ordinal"}
STATISTICS = ("cohen_kappa", "fleiss_kappa", "krippendorff_alpha")
#: pairwise answers as an outcome for the alphabetically first system of the pair (so that A/B order is irrelevant)
PAIRWISE_OUTCOME = {"first": 1.0, "tie": 0.0, "second": -1.0}


@dataclass(frozen=True)
class Ratings:
    """A raters × units matrix of values (NaN where a rater did not rate a unit), and the value domain."""

    values: np.ndarray
    raters: tuple[str, ...]
    units: tuple[Any, ...]
    domain: tuple[float, ...]  # every possible value, in order (ordinal distances follow this order)

    @property
    def n_ratings(self) -> int:
        return int(np.isfinite(self.values).sum())


@dataclass(frozen=True)
class Agreement:
    statistic: str
    value: float
    ci: tuple[float, float] | None
    n_units: int
    n_raters: int
    options: dict[str, Any] = field(default_factory=dict)
    resamples: int = 0
    seed: int | None = None
    details: dict[str, Any] = field(default_factory=dict)  # not part of the signature (e.g. κ per annotator pair)

    @property
    def signature(self) -> str:
        parts = [f"agreement:{self.statistic}"] + [f"{k}:{v}" for k, v in self.options.items()]
        parts += [f"units:{self.n_units}", f"raters:{self.n_raters}"]
        if self.resamples:
            parts += ["ci:bootstrap-units-percentile", f"resamples:{self.resamples}", f"seed:{self.seed}"]
        return "|".join(parts + [f"version:pdg-eval-{__version__}"])

    def to_json(self) -> dict[str, Any]:
        return {"statistic": self.statistic, "value": self.value, "ci": list(self.ci) if self.ci else None,
                "n_units": self.n_units, "n_raters": self.n_raters, "options": self.options,
                "details": self.details, "signature": self.signature}


def pairwise_outcome(left: str, right: str, choice: str) -> float:
    """A pairwise answer as +1 / 0 / −1 for the alphabetically first system of the pair."""
    if choice == "tie":
        return PAIRWISE_OUTCOME["tie"]
    winner = left if choice == "left" else right
    return PAIRWISE_OUTCOME["first"] if winner == min(left, right) else PAIRWISE_OUTCOME["second"]


def ratings_by_aspect(frame: pd.DataFrame, task: str, domains: dict[str, Sequence[float]] | None = None
                      ) -> dict[str, Ratings]:
    """The judgments of an analysed table as one :class:`Ratings` matrix per aspect.

    ``domains`` gives an aspect's full scale (e.g. a Likert 1–5 when nobody answered 1); by default the domain
    is the values seen (pairwise: −1, 0, 1; ranking: 1..n)."""
    domains = domains or {}
    frame = frame.copy()
    if task == "pairwise":
        frame["unit"] = frame["item"].astype(str)
        frame["rating"] = [pairwise_outcome(l, r, c) for l, r, c in zip(frame["left"], frame["right"], frame["choice"])]
    else:
        frame["unit"] = list(zip(frame["item"].astype(str), frame["system"].astype(str)))
        frame["rating"] = frame["rank" if task == "ranking" else "value"].astype(float)
    out = {}
    for aspect, rows in frame.groupby("aspect", sort=False):
        raters = tuple(sorted(rows["annotator"].astype(str).unique()))
        units = tuple(sorted(rows["unit"].unique()))
        r_index = {r: i for i, r in enumerate(raters)}
        u_index = {u: i for i, u in enumerate(units)}
        matrix = np.full((len(raters), len(units)), np.nan)
        matrix[[r_index[str(a)] for a in rows["annotator"]], [u_index[u] for u in rows["unit"]]] = rows["rating"]
        if task == "pairwise":
            domain = tuple(sorted(PAIRWISE_OUTCOME.values()))
        else:
            domain = tuple(sorted(set(float(v) for v in domains.get(aspect, ())) | set(rows["rating"].unique())))
        out[str(aspect)] = Ratings(matrix, raters, units, domain)
    return out


def _weights(k: int, weights: str | None) -> np.ndarray:
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    if weights is None:
        return (i != j).astype(float)
    if weights == "linear":
        return np.abs(i - j).astype(float)
    if weights == "quadratic":
        return ((i - j) ** 2).astype(float)
    raise ConfigError(f"Cohen weights must be None, 'linear' or 'quadratic'; got {weights!r}")


def _kappa_from_confusions(confusions: np.ndarray, w: np.ndarray) -> np.ndarray:
    """κ = 1 − Σ w·O / Σ w·E for a stack of k × k confusion matrices (NaN where undefined: E has no weight)."""
    observed = (confusions * w).sum(axis=(-2, -1))
    rows, cols = confusions.sum(axis=-1), confusions.sum(axis=-2)
    total = rows.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.einsum("...i,...j,ij->...", rows, cols, w) / total
        return 1.0 - observed / expected


def _codes(ratings: Ratings) -> np.ndarray:
    """Values as indices into the domain (−1 where missing)."""
    lookup = {v: i for i, v in enumerate(ratings.domain)}
    codes = np.full(ratings.values.shape, -1, dtype=np.int64)
    finite = np.isfinite(ratings.values)
    codes[finite] = [lookup[v] for v in ratings.values[finite]]
    return codes


def _unit_counts(n_units: int, resamples: int, seed: int) -> np.ndarray:
    """How often each unit appears in each bootstrap resample (resamples × units); row 0 is the data itself."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_units, size=(resamples, n_units))
    counts = np.zeros((resamples + 1, n_units))
    counts[0] = 1.0
    np.add.at(counts, (np.repeat(np.arange(1, resamples + 1), n_units), draws.ravel()), 1.0)
    return counts


def _interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float] | None:
    finite = values[np.isfinite(values)]
    if len(finite) < max(10, len(values) // 2):
        return None
    tail = (1 - confidence) / 2
    return float(np.quantile(finite, tail)), float(np.quantile(finite, 1 - tail))


def cohen_kappa(ratings: Ratings, weights: str | None = None, resamples: int = 0, seed: int = 12345) -> Agreement:
    """Mean pairwise Cohen's κ over annotator pairs sharing at least two units."""
    codes, k = _codes(ratings), len(ratings.domain)
    w = _weights(k, weights)
    counts = _unit_counts(len(ratings.units), resamples, seed)
    per_pair, pairs = [], []
    for a, b in combinations(range(len(ratings.raters)), 2):
        shared = np.flatnonzero((codes[a] >= 0) & (codes[b] >= 0))
        if len(shared) < 2:
            continue
        onehot = np.zeros((len(shared), k * k))
        onehot[np.arange(len(shared)), codes[a, shared] * k + codes[b, shared]] = 1.0
        confusions = (counts[:, shared] @ onehot).reshape(-1, k, k)
        per_pair.append(_kappa_from_confusions(confusions, w))
        pairs.append((ratings.raters[a], ratings.raters[b], len(shared)))
    if not pairs:
        raise ConfigError("Cohen's kappa needs two annotators who rated at least two of the same units")
    stacked = np.vstack(per_pair)  # pairs × (1 + resamples)
    with _quiet():
        means = np.nanmean(stacked, axis=0)
    options = {"weights": weights or "none", "pairs": len(pairs)}
    pair_values = {f"{a}~{b}": float(stacked[i, 0]) for i, (a, b, _) in enumerate(pairs)}
    return Agreement("cohen_kappa", float(means[0]), _interval(means[1:]) if resamples else None,
                     len(ratings.units), len(ratings.raters), options, resamples, seed, {"per_pair": pair_values})


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's warnings for undefined statistics (they come back as NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def category_table(ratings: Ratings) -> tuple[np.ndarray, int, int]:
    """Units × categories counts of the units rated by the most common number of raters ``m``;
    returns (table, m, units left out)."""
    codes = _codes(ratings)
    n_rated = (codes >= 0).sum(axis=0)
    values, freq = np.unique(n_rated[n_rated >= 2], return_counts=True)
    if len(values) == 0:
        return np.zeros((0, len(ratings.domain))), 0, len(ratings.units)
    m = int(values[np.flatnonzero(freq == freq.max())[-1]])
    keep = np.flatnonzero(n_rated == m)
    table = np.zeros((len(keep), len(ratings.domain)))
    for rater_codes in codes[:, keep]:
        rated = rater_codes >= 0
        np.add.at(table, (np.flatnonzero(rated), rater_codes[rated]), 1.0)
    return table, m, len(ratings.units) - len(keep)


def _fleiss_from_table(table: np.ndarray, m: int, counts: np.ndarray) -> np.ndarray:
    """Fleiss' κ (Fleiss 1971; statsmodels' formula) for each row of unit counts (weights per unit)."""
    n_units = counts.sum(axis=1)
    p_j = (counts @ table) / (n_units * m)[:, None]
    p_unit = ((table ** 2).sum(axis=1) - m) / (m * (m - 1))
    p_bar = counts @ p_unit / n_units
    p_e = (p_j ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (p_bar - p_e) / (1 - p_e)


def fleiss_kappa(ratings: Ratings, resamples: int = 0, seed: int = 12345) -> Agreement:
    """Fleiss' κ over the units rated by the same number of annotators (values as categories)."""
    table, m, dropped = category_table(ratings)
    if len(table) < 2:
        raise ConfigError("Fleiss' kappa needs at least two units rated by the same number (>= 2) of annotators")
    counts = _unit_counts(len(table), resamples, seed)
    values = _fleiss_from_table(table, m, counts)
    options = {"categories": len(ratings.domain), "raters_per_unit": m, "units_left_out": dropped}
    return Agreement("fleiss_kappa", float(values[0]), _interval(values[1:]) if resamples else None, len(table),
                     len(ratings.raters), options, resamples, seed)


def krippendorff_alpha(ratings: Ratings, level: str, resamples: int = 0, seed: int = 12345) -> Agreement:
    """Krippendorff's α at the given level of measurement (the ``krippendorff`` package)."""
    import krippendorff

    if level not in LEVELS:
        raise ConfigError(f"level of measurement must be one of {', '.join(LEVELS)}; got {level!r}")
    codes = _codes(ratings)
    value_counts = np.zeros((len(ratings.units), len(ratings.domain)))
    for rater_codes in codes:
        rated = rater_codes >= 0
        np.add.at(value_counts, (np.flatnonzero(rated), rater_codes[rated]), 1.0)
    pairable = value_counts.sum(axis=1) >= 2
    value_counts = value_counts[pairable]
    if len(value_counts) < 2:
        raise ConfigError("Krippendorff's alpha needs at least two units with two or more ratings")
    if len(ratings.domain) < 2:  # the package raises ValueError: α is 0/0 when only one value can occur
        raise ConfigError("Krippendorff's alpha needs at least two possible values")
    domain = np.asarray(ratings.domain)

    def alpha(rows: np.ndarray) -> float:
        with _quiet():
            return float(krippendorff.alpha(value_counts=rows, value_domain=domain, level_of_measurement=level))

    value = alpha(value_counts)
    ci = None
    if resamples:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, len(value_counts), size=(resamples, len(value_counts)))
        ci = _interval(np.array([alpha(value_counts[d]) for d in draws]))
    options = {"level": level, "pairable_units": int(pairable.sum())}
    return Agreement("krippendorff_alpha", value, ci, len(ratings.units), len(ratings.raters), options,
                     resamples, seed)


def agreement(ratings: Ratings, level: str, weights: str | None = "auto", resamples: int = 1000, seed: int = 12345
              ) -> list[Agreement]:
    """Cohen's κ (weighted for ordinal levels unless ``weights`` says otherwise), Fleiss' κ and Krippendorff's α.

    A statistic that the data cannot define (e.g. one annotator per unit) is left out."""
    if weights == "auto":
        weights = None if level == "nominal" else "quadratic"
    out = []
    for compute in (lambda: cohen_kappa(ratings, weights, resamples, seed),
                    lambda: fleiss_kappa(ratings, resamples, seed),
                    lambda: krippendorff_alpha(ratings, level, resamples, seed)):
        try:
            out.append(compute())
        except ConfigError:
            continue
    return out
