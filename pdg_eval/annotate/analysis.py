"""Analysis of human judgments: the seed papers' scoring rules, with tests and bootstrap CIs.

* **Win/Tie/Lose** (IDL §4.4.2): per aspect and system pair, the shares of all judgments that are wins, ties and
  losses of the first system (IDL's "winning rate" is wins / all judgments, ties included); an exact two-sided
  binomial test of wins against losses (ties left out; ``scipy.stats.binomtest``).
* **Ranking scores** (MORPHEUS §4.3): each annotator's ranking of the ``n`` responses to an item becomes scores in
  [0, 1] — ``(n − rank) / (n − 1)``, and every response ranked above the ground truth gets 1 (the anchor rule:
  "responses ranked above the gold get 1"); a system's score is the mean over items and annotators.
* **Likert**: mean, median and IQR per system and aspect; paired Wilcoxon signed-rank tests on per-item means between
  systems, Holm-adjusted per aspect (the same tests are run on ranking scores).
* **Bradley–Terry** strengths (log scale, centred) for more than two systems, from pairwise judgments or from the
  pairs implied by rankings (a tie counts half a win each way); fitted by ``choix.ilsr_pairwise_dense``.
* **Position bias**: pairwise — the share of decisive judgments that chose the response shown on the left, with an
  exact binomial test against 1/2, overall, per aspect and per annotator; ranking/Likert — the mean score by display
  position with a Kruskal–Wallis test.
* **Agreement**: :mod:`pdg_eval.annotate.agreement`, per aspect, with the level of measurement stated.

All CIs are 95 % percentile intervals from one set of item resamples (items drawn with replacement, all of an
item's judgments with it), seeded, so a report is reproducible for the same judgments and seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import ConfigError
from .agreement import DEFAULT_LEVEL, LEVELS, Agreement, agreement, ratings_by_aspect
from .frames import analysed, aspects_of, systems_of

BT_ALPHA = 0.01  # choix ILSR regularisation: keeps strengths finite when a system never loses


@dataclass
class AnalysisOptions:
    gold: str | None = None  # ranking: the ground-truth system (anchor of the MORPHEUS scores)
    aspects: Sequence[str] | None = None  # display order
    systems: Sequence[str] | None = None  # order; in a pairwise study the earlier system of a pair is "first"
    levels: dict[str, str] = field(default_factory=dict)  # Krippendorff level per aspect (default: by task)
    domains: dict[str, Sequence[float]] = field(default_factory=dict)  # full scale per aspect (Likert)
    resamples: int = 1000
    seed: int = 12345
    confidence: float = 0.95

    @property
    def signature(self) -> str:
        return (f"ci:bootstrap-items-percentile|confidence:{self.confidence}|resamples:{self.resamples}|"
                f"seed:{self.seed}|version:pdg-eval-{__version__}")


@dataclass
class Analysis:
    name: str
    task: str
    aspects: list[str]
    systems: list[str]
    counts: dict[str, int]
    tables: dict[str, pd.DataFrame]
    agreement: dict[str, list[Agreement]]
    levels: dict[str, str]
    options: AnalysisOptions
    notes: list[str] = field(default_factory=list)
    correlation: pd.DataFrame | None = None  # metric-vs-human, set by the caller (:mod:`.correlation`)
    #: Δρ of same-metric pairs with other options, set by the caller (:func:`.correlation.paired_spearman_differences`)
    correlation_differences: pd.DataFrame | None = None
    correlation_notes: list[str] = field(default_factory=list)
    correlation_left_out: list[str] = field(default_factory=list)  # "metric: reason" of each metric left out
    metric_signatures: list[str] = field(default_factory=list)


# -- resampling ------------------------------------------------------------------------------------------------

class ItemResampler:
    """One seeded set of item resamples shared by every statistic of a report (row 0 = the data itself)."""

    def __init__(self, items: Sequence[str], resamples: int, seed: int, confidence: float = 0.95):
        self.items = list(items)
        self.index = {item: i for i, item in enumerate(self.items)}
        self.resamples, self.confidence = resamples, confidence
        rng = np.random.default_rng(seed)
        n = len(self.items)
        self.counts = np.zeros((resamples + 1, n))
        self.counts[0] = 1.0
        if resamples:
            draws = rng.integers(0, n, size=(resamples, n))
            np.add.at(self.counts, (np.repeat(np.arange(1, resamples + 1), n), draws.ravel()), 1.0)

    def per_item(self, items: Sequence[str], values: Sequence[float]) -> np.ndarray:
        """Sum of ``values`` per item, in resampler order."""
        out = np.zeros(len(self.items))
        np.add.at(out, [self.index[i] for i in items], np.asarray(values, dtype=float))
        return out

    def ratio(self, numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        """Σ numerator / Σ denominator over each resample's items (entry 0: the data)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.counts @ numerator) / (self.counts @ denominator)

    def interval(self, values: np.ndarray) -> tuple[float, float] | None:
        draws = values[1:]
        draws = draws[np.isfinite(draws)]
        if not self.resamples or len(draws) < self.resamples // 2:
            return None
        tail = (1 - self.confidence) / 2
        return float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))


# -- pairwise --------------------------------------------------------------------------------------------------

def _ordered_pair(a: str, b: str, order: Sequence[str]) -> tuple[str, str]:
    rank = {s: i for i, s in enumerate(order)}
    return (a, b) if (rank.get(a, len(rank)), a) <= (rank.get(b, len(rank)), b) else (b, a)


def oriented(frame: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Pairwise judgments as ``first``, ``second`` and ``outcome`` (win/tie/lose of ``first``)."""
    out = frame.copy()
    pairs = [_ordered_pair(l, r, order) for l, r in zip(frame["left"], frame["right"])]
    out["first"] = [p[0] for p in pairs]
    out["second"] = [p[1] for p in pairs]
    winner = np.where(frame["choice"] == "left", frame["left"], frame["right"])
    out["outcome"] = np.where(frame["choice"] == "tie", "tie", np.where(winner == out["first"], "win", "lose"))
    return out


def win_tie_lose(frame: pd.DataFrame, aspects: Sequence[str], order: Sequence[str], resampler: ItemResampler
                 ) -> pd.DataFrame:
    """IDL's table: per aspect and system pair, Win/Tie/Lose shares of the first system, binomial test, CIs."""
    from scipy.stats import binomtest

    data = oriented(frame, order)
    rows = []
    for aspect in aspects:
        for (first, second), group in data[data["aspect"] == aspect].groupby(["first", "second"], sort=False):
            n = {k: int((group["outcome"] == k).sum()) for k in ("win", "tie", "lose")}
            total = len(group)
            decisive = n["win"] + n["lose"]
            per = {k: resampler.per_item(group["item"], group["outcome"] == k) for k in n}
            everything = resampler.per_item(group["item"], np.ones(total))
            win_rate = resampler.ratio(per["win"], everything)
            decisive_rate = resampler.ratio(per["win"], per["win"] + per["lose"])
            rows.append({
                "aspect": aspect, "first": first, "second": second, "items": group["item"].nunique(),
                "judgments": total, "win": n["win"], "tie": n["tie"], "lose": n["lose"],
                "win_rate": n["win"] / total, "tie_rate": n["tie"] / total, "lose_rate": n["lose"] / total,
                "win_rate_ci": resampler.interval(win_rate),
                "win_share_decisive": n["win"] / decisive if decisive else float("nan"),
                "win_share_decisive_ci": resampler.interval(decisive_rate),
                "p_binomial": float(binomtest(n["win"], decisive, 0.5).pvalue) if decisive else 1.0})
    return pd.DataFrame(rows)


# -- ranking -----------------------------------------------------------------------------------------------------

def morpheus_scores(ranks: Sequence[int], gold_rank: int | None = None) -> list[float]:
    """MORPHEUS' normalisation of one ranking (rank 1 = best): ``(n − r) / (n − 1)``, and 1 for every response
    ranked above the ground truth (``gold_rank``)."""
    n = len(ranks)
    if n < 2 or sorted(ranks) != list(range(1, n + 1)):
        raise ConfigError(f"a ranking must use each of the ranks 1..{n} once; got {list(ranks)}")
    return [1.0 if gold_rank is not None and r < gold_rank else (n - r) / (n - 1) for r in ranks]


def with_ranking_scores(frame: pd.DataFrame, gold: str | None) -> pd.DataFrame:
    """The ranking table with a ``score`` column (MORPHEUS normalisation within each item × annotator × aspect)."""
    out = frame.copy()
    out["rank"] = out["rank"].astype(int)
    scores = pd.Series(index=out.index, dtype=float)
    for _, group in out.groupby(["item", "annotator", "aspect"], sort=False):
        gold_rows = group[group["system"] == gold] if gold else group.iloc[:0]
        gold_rank = int(gold_rows["rank"].iloc[0]) if len(gold_rows) else None
        scores[group.index] = morpheus_scores(list(group["rank"]), gold_rank)
    out["score"] = scores
    return out


def mean_table(frame: pd.DataFrame, value: str, aspects: Sequence[str], systems: Sequence[str],
               resampler: ItemResampler, extra: dict[str, str] | None = None) -> pd.DataFrame:
    """Per aspect and system: mean of ``value`` over judgments with its CI, and the mean of ``extra`` columns."""
    rows = []
    for aspect in aspects:
        part = frame[frame["aspect"] == aspect]
        for system in systems:
            group = part[part["system"] == system]
            if group.empty:
                continue
            values = group[value].astype(float)
            means = resampler.ratio(resampler.per_item(group["item"], values),
                                    resampler.per_item(group["item"], np.ones(len(group))))
            row = {"aspect": aspect, "system": system, "items": group["item"].nunique(), "judgments": len(group),
                   "mean": float(values.mean()), "ci": resampler.interval(means)}
            if value == "value":
                row |= {"median": float(values.median()), "q1": float(values.quantile(0.25)),
                        "q3": float(values.quantile(0.75))}
            for name, column in (extra or {}).items():
                row[name] = float(group[column].astype(float).mean())
            rows.append(row)
    return pd.DataFrame(rows)


def paired_item_tests(frame: pd.DataFrame, value: str, aspects: Sequence[str], systems: Sequence[str]
                      ) -> pd.DataFrame:
    """Wilcoxon signed-rank tests on per-item means between every two systems, Holm-adjusted within an aspect."""
    from scipy.stats import wilcoxon

    from ..stats import adjust

    rows = []
    for aspect in aspects:
        means = (frame[frame["aspect"] == aspect].groupby(["item", "system"])[value].mean().unstack("system"))
        found = []
        for a, b in combinations([s for s in systems if s in means.columns], 2):
            pair = means[[a, b]].dropna()
            diff = pair[b] - pair[a]
            p = 1.0 if len(pair) == 0 or not diff.any() else float(wilcoxon(pair[b], pair[a]).pvalue)
            found.append({"aspect": aspect, "a": a, "b": b, "items": len(pair), "mean_a": float(pair[a].mean()),
                          "mean_b": float(pair[b].mean()), "p_wilcoxon": p})
        for row, p_adj in zip(found, adjust([r["p_wilcoxon"] for r in found], "holm") if found else []):
            rows.append(row | {"p_holm": p_adj})
    return pd.DataFrame(rows)


# -- Bradley–Terry -------------------------------------------------------------------------------------------------

def comparisons(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """Pairwise outcomes as ``item, aspect, winner, loser, weight`` (a tie: half a win each way)."""
    rows = []
    if task == "pairwise":
        for item, aspect, left, right, choice in frame[["item", "aspect", "left", "right", "choice"]].itertuples(
                index=False):
            if choice == "tie":
                rows += [(item, aspect, left, right, 0.5), (item, aspect, right, left, 0.5)]
            else:
                winner, loser = (left, right) if choice == "left" else (right, left)
                rows.append((item, aspect, winner, loser, 1.0))
    else:  # ranking: every two responses of one annotator's ranking
        for (item, _, aspect), group in frame.groupby(["item", "annotator", "aspect"], sort=False):
            ranked = list(zip(group["system"], group["rank"]))
            for (s1, r1), (s2, r2) in combinations(ranked, 2):
                if r1 == r2:
                    rows += [(item, aspect, s1, s2, 0.5), (item, aspect, s2, s1, 0.5)]
                else:
                    rows.append((item, aspect, s1, s2, 1.0) if r1 < r2 else (item, aspect, s2, s1, 1.0))
    return pd.DataFrame(rows, columns=["item", "aspect", "winner", "loser", "weight"])


def fit_bradley_terry(wins: np.ndarray, alpha: float = BT_ALPHA) -> np.ndarray:
    """Log-strengths (centred) from a wins matrix (``wins[i, j]``: times i beat j), by choix's ILSR."""
    import choix

    params = choix.ilsr_pairwise_dense(wins, alpha=alpha, max_iter=1000)
    return params - params.mean()


def bradley_terry(comps: pd.DataFrame, aspects: Sequence[str], systems: Sequence[str], resampler: ItemResampler
                  ) -> pd.DataFrame:
    """Strengths per aspect and system with bootstrap CIs (items resampled, the model refitted each time)."""
    index = {s: i for i, s in enumerate(systems)}
    k = len(systems)
    rows = []
    for aspect in aspects:
        part = comps[comps["aspect"] == aspect]
        if part.empty:
            continue
        per_item = np.zeros((len(resampler.items), k * k))
        np.add.at(per_item, ([resampler.index[i] for i in part["item"]],
                             [index[w] * k + index[lo] for w, lo in zip(part["winner"], part["loser"])]),
                  part["weight"].to_numpy(float))
        wins = (resampler.counts @ per_item).reshape(-1, k, k)
        fitted = np.array([fit_bradley_terry(w) for w in wins])
        for j, system in enumerate(systems):
            won = float(wins[0, j].sum())
            played = won + float(wins[0, :, j].sum())
            rows.append({"aspect": aspect, "system": system, "strength": float(fitted[0, j]),
                         "ci": resampler.interval(fitted[:, j]), "comparisons": played,
                         "win_share": won / played if played else float("nan")})
    return pd.DataFrame(rows)


# -- position bias -------------------------------------------------------------------------------------------------

def position_bias_pairwise(frame: pd.DataFrame, aspects: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Share of decisive judgments for the left response: overall, per aspect; and per annotator."""
    from scipy.stats import binomtest

    def row(group: pd.DataFrame) -> dict[str, Any]:
        decisive = group[group["choice"] != "tie"]
        left = int((decisive["choice"] == "left").sum())
        n = len(decisive)
        return {"judgments": len(group), "decisive": n, "left": left,
                "left_share": left / n if n else float("nan"),
                "p_binomial": float(binomtest(left, n, 0.5).pvalue) if n else 1.0}

    by_aspect = [{"aspect": "(all)"} | row(frame)] + [{"aspect": a} | row(frame[frame["aspect"] == a])
                                                       for a in aspects]
    by_annotator = [{"annotator": name} | row(group) for name, group in frame.groupby("annotator")]
    return pd.DataFrame(by_aspect), pd.DataFrame(by_annotator)


def position_bias_positions(frame: pd.DataFrame, value: str, aspects: Sequence[str]) -> pd.DataFrame:
    """Mean ``value`` by display position per aspect, with a Kruskal–Wallis test across positions."""
    from scipy.stats import kruskal

    rows = []
    for aspect in ["(all)", *aspects]:
        part = frame if aspect == "(all)" else frame[frame["aspect"] == aspect]
        groups = {int(p): g[value].astype(float).to_numpy() for p, g in part.groupby("position")}
        samples = [g for g in groups.values() if len(g)]
        varied = len(samples) > 1 and len(np.unique(np.concatenate(samples))) > 1
        p = float(kruskal(*samples).pvalue) if varied else 1.0
        rows.append({"aspect": aspect, "judgments": len(part), "p_kruskal": p}
                    | {f"mean@{p_ + 1}": float(v.mean()) for p_, v in sorted(groups.items())})
    return pd.DataFrame(rows)


# -- the whole analysis ---------------------------------------------------------------------------------------------

def _levels(task: str, aspects: Sequence[str], given: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(given) - set(aspects))
    if unknown:
        raise ConfigError(f"--level names unknown aspect(s): {', '.join(unknown)}; aspects: {', '.join(aspects)}")
    for aspect, level in given.items():
        if level not in LEVELS:
            raise ConfigError(f"level of {aspect!r} must be one of {', '.join(LEVELS)}; got {level!r}")
    return {a: given.get(a, DEFAULT_LEVEL[task]) for a in aspects}


def analyse(frame: pd.DataFrame, task: str, name: str, options: AnalysisOptions | None = None,
            checks: pd.DataFrame | None = None) -> Analysis:
    """Every statistic of the report for one judgment table (attention-check items are left out)."""
    options = options or AnalysisOptions()
    n_all = len(frame)
    data = analysed(frame, task)
    if data.empty:
        raise ConfigError("no judgments to analyse (attention checks are left out)")
    aspects = aspects_of(data, options.aspects)
    found = systems_of(data, task)
    systems = [s for s in (options.systems or []) if s in found] + [s for s in found if s not in (options.systems or [])]
    levels = _levels(task, aspects, options.levels)
    items = sorted(data["item"].astype(str).unique())
    data["item"] = data["item"].astype(str)
    resampler = ItemResampler(items, options.resamples, options.seed, options.confidence)
    tables: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    if task == "pairwise":
        tables["win_tie_lose"] = win_tie_lose(data, aspects, systems, resampler)
        tables["position_bias"], tables["position_bias_annotators"] = position_bias_pairwise(data, aspects)
    else:
        if task == "ranking":
            gold = options.gold
            if gold is not None and gold not in found:
                raise ConfigError(f"--gold {gold!r} is not a system of these judgments ({', '.join(found)})")
            if gold is None:
                notes.append("no ground-truth system given: ranking scores are (n - rank) / (n - 1) without the "
                             "MORPHEUS anchor rule")
            data = with_ranking_scores(data, gold)
            value = "score"
            tables["ranking"] = mean_table(data, "score", aspects, systems, resampler, {"mean_rank": "rank"})
        else:
            value = "value"
            tables["likert"] = mean_table(data, "value", aspects, systems, resampler)
        tables["tests"] = paired_item_tests(data, value, aspects, systems)
        positioned = data[data["position"].notna()] if "position" in data else data.iloc[:0]
        if len(positioned):
            tables["position_bias"] = position_bias_positions(positioned, value, aspects)
        else:
            notes.append("the display positions are unknown: no position-bias audit")
    if task != "likert" and len(systems) > 2:
        tables["bradley_terry"] = bradley_terry(comparisons(data, task), aspects, systems, resampler)
    domains = {a: list(v) for a, v in options.domains.items()}
    ratings = ratings_by_aspect(data, task, domains)
    agreements = {a: agreement(ratings[a], levels[a], resamples=options.resamples, seed=options.seed)
                  for a in aspects}
    if checks is not None and len(checks):
        tables["checks"] = checks
    counts = {"items": len(items), "annotators": int(data["annotator"].nunique()), "judgments": len(data),
              "check_judgments_left_out": n_all - len(data), "systems": len(systems)}
    return Analysis(name, task, aspects, systems, counts, tables, agreements, levels, options, notes)
