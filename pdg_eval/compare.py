"""Many systems x many metrics: scores, bootstrap intervals, paired tests against a baseline with multiple-comparison
correction, and tie groups (``pdg-eval compare`` and the leaderboards).

Every system is scored on its own items; the paired tests and tie groups use the items all systems answered (ids in
common), which are reported. All pairs, metrics and systems share one set of random draws (as sacreBLEU does), so
the whole table is reproducible from one seed. Multiple comparisons are corrected per metric column (the systems
tested against the baseline form one family) or over the whole table (``family="table"``), Holm by default.

Tie groups: systems are sorted best first; the best one leads group 1, and every system whose (corrected) test
against the leader is not significant joins it; the best remaining system leads group 2, and so on.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .errors import ConfigError, InputError
from .fingerprints import FIELDS as FINGERPRINT_FIELDS, check_paired
from .metrics.base import Metric, Signature, Stats, build_metric
from .inputs import decode_json, read_text, schema_problem
from .resampling import Draws, is_vectorised, pair_form
from .stats import PairedResult, adjust, paired_t_test, paired_tests
from .files import file_sha256

TESTS = ("ar", "bootstrap", "t")
FAMILIES = ("column", "table")


@dataclass
class SystemRun:
    """One system's per-item statistics for each metric (from scoring records, or from a ``score --json`` file)."""

    name: str
    source: str
    ids: list[str]
    #: the dicts below are keyed by the metric's identity (``Signature.identity``): columns of systems match by it
    metrics: dict[str, Metric]
    stats: dict[str, list[Stats]]
    signatures: dict[str, str]  # the full signature
    values: dict[str, dict[str, float]]  # the scores of all the system's items
    sha256: str | None = None
    #: per field the metrics read: one fingerprint per item (pdg_eval.fingerprints), in ``ids`` order
    fingerprints: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_score_run(cls, name: str, run, sha256: str | None = None) -> "SystemRun":
        results = {r.signature.identity: r for r in run.results}
        return cls(name, run.source, list(run.ids), {k: r.metric for k, r in results.items()},
                   {k: r.stats for k, r in results.items()}, {k: str(r.signature) for k, r in results.items()},
                   {k: r.scores for k, r in results.items()}, sha256, dict(run.fingerprints))

    def restricted(self, identities: set[str]) -> "SystemRun":
        """The run with only the metrics named (e.g. those every system of a board has)."""
        keep = [identity for identity in self.metrics if identity in identities]
        return dataclasses.replace(self, metrics={k: self.metrics[k] for k in keep},
                                   stats={k: self.stats[k] for k in keep},
                                   signatures={k: self.signatures[k] for k in keep},
                                   values={k: self.values[k] for k in keep})

    @classmethod
    def from_score_json(cls, name: str, path: str | Path) -> "SystemRun":
        """A file written by ``pdg-eval score --json`` (with its per-item statistics), checked by
        :func:`_score_json_doc`; a metric that cannot be built or whose values or statistics are missing raises
        :class:`InputError` naming the file and the field."""
        source = str(path)
        doc = _score_json_doc(path)
        metrics, stats, sigs, values = {}, {}, {}, {}
        for k, entry in enumerate(doc["metrics"]):
            spec, sig = entry["spec"], entry["signature"]["string"]
            try:
                key = Signature.from_json(entry["signature"]).identity
            except (KeyError, AttributeError, TypeError):
                raise InputError(source, None, f"metrics.{k}.signature", "not a pdg-eval signature") from None
            if key in metrics:
                raise InputError(source, None, f"metrics.{k}.spec", f"{spec} is listed twice")
            try:
                metrics[key] = build_metric(spec)
            except ConfigError as exc:
                raise InputError(source, None, f"metrics.{k}.spec", str(exc)) from None
            missing = [name for name in metrics[key].keys if name not in entry["values"]]
            if missing:
                raise InputError(source, None, f"metrics.{k}.values", f"no value for {', '.join(missing)}")
            if sig not in doc["items"]["stats"]:
                raise InputError(source, None, "items.stats", f"no statistics for {spec} (signature {sig})")
            stats[key], sigs[key], values[key] = doc["items"]["stats"][sig], sig, entry["values"]
            _check_item_stats(source, spec, metrics[key], stats[key])
        return cls(name, str(doc.get("source", path)), list(doc["items"]["ids"]), metrics, stats, sigs, values,
                   fingerprints=doc["items"].get("fingerprints", {}))


@dataclass(frozen=True)
class Column:
    """One reported number: a key of a metric (e.g. ``bleu-2`` of ``bleu:sacrebleu``)."""

    spec: str
    key: str
    label: str
    higher_is_better: bool
    display_factor: float
    signature: str
    identity: str = ""  # what the systems' metrics are matched by (Signature.identity)


@dataclass
class Cell:
    value: float
    ci: tuple[float, float] | None = None
    p: float | None = None  # vs the baseline
    p_adjusted: float | None = None
    significant: bool = False
    group: int | None = None


@dataclass
class Comparison:
    systems: list[str]
    baseline: str
    columns: list[Column]
    cells: dict[tuple[str, int], Cell]
    test: str
    resamples: int
    seed: int
    adjust: str
    alpha: float
    family: str
    ci_resamples: int
    n_items: dict[str, int]
    n_common: int
    ceilings: list[str] = field(default_factory=list)
    untested: dict[int, str] = field(default_factory=dict)  # column -> why no test was run
    no_ci: dict[int, str] = field(default_factory=dict)  # column -> why no interval is given
    seconds: float = 0.0

    @property
    def test_signature(self) -> str:
        parts = [f"test:{self.test}"]
        if self.test != "t":
            parts += [f"resamples:{self.resamples}", f"seed:{self.seed}", "count:ge"]
        parts += [f"adjust:{self.adjust}", f"family:{self.family}", f"alpha:{self.alpha}",
                  f"ci:percentile-bootstrap-{self.ci_resamples}", f"items:{self.n_common}",
                  f"version:pdg-eval-{__version__}"]
        return "|".join(parts)

    def to_json(self) -> dict:
        return {
            "pdg_eval_version": __version__, "baseline": self.baseline, "systems": self.systems,
            "ceilings": self.ceilings, "n_items": self.n_items, "n_common": self.n_common,
            "test_signature": self.test_signature,
            "columns": [{"spec": c.spec, "key": c.key, "higher_is_better": c.higher_is_better,
                         "display_factor": c.display_factor, "signature": c.signature,
                         "untested": self.untested.get(j), "no_ci": self.no_ci.get(j)}
                        for j, c in enumerate(self.columns)],
            "cells": [{"system": s, "spec": self.columns[j].spec, "key": self.columns[j].key, "value": cell.value,
                       "ci": list(cell.ci) if cell.ci else None, "p": cell.p, "p_adjusted": cell.p_adjusted,
                       "significant": cell.significant, "group": cell.group}
                      for (s, j), cell in self.cells.items()],
        }


def comparison_from_json(doc: dict) -> Comparison:
    """Inverse of :meth:`Comparison.to_json` (leaderboards are rendered from stored comparisons)."""
    columns = [Column(c["spec"], c["key"], f"{c['spec'].split(',')[0]}:{c['key']}", c["higher_is_better"],
                      c["display_factor"], c["signature"], c["signature"]) for c in doc["columns"]]
    index = {(c.spec, c.key): j for j, c in enumerate(columns)}
    cells = {(c["system"], index[(c["spec"], c["key"])]): Cell(c["value"], tuple(c["ci"]) if c["ci"] else None, c["p"],
                                                             c["p_adjusted"], c["significant"], c["group"])
             for c in doc["cells"]}
    sig = dict(part.split(":", 1) for part in doc["test_signature"].split("|"))
    return Comparison(doc["systems"], doc["baseline"], columns, cells, sig["test"], int(sig.get("resamples", 0)),
                      int(sig.get("seed", 0)), sig["adjust"], float(sig["alpha"]), sig["family"],
                      int(sig["ci"].rsplit("-", 1)[1]), doc["n_items"], doc["n_common"], doc["ceilings"],
                      {j: c["untested"] for j, c in enumerate(doc["columns"]) if c.get("untested")},
                      {j: c["no_ci"] for j, c in enumerate(doc["columns"]) if c.get("no_ci")})


def _common_indices(runs: Sequence[SystemRun]) -> tuple[int, dict[str, list[int]]]:
    """Indices (per system) of the ids every system has, in the first system's order."""
    for run in runs:
        if len(set(run.ids)) != len(run.ids):
            raise InputError(run.source, None, "id", f"{run.name}: ids are not unique; paired tests need one item per id")
    common = set(runs[0].ids).intersection(*(r.ids for r in runs[1:]))
    if not common:
        raise ConfigError("the systems share no item ids: align them to the dataset first (e.g. score --dataset)")
    order = [i for i in runs[0].ids if i in common]
    positions = {r.name: {item: k for k, item in enumerate(r.ids)} for r in runs}
    index = {r.name: [positions[r.name][i] for i in order] for r in runs}
    fields = [f for f in FINGERPRINT_FIELDS if any(f in m.scored_against() for m in runs[0].metrics.values())]
    check_paired([r.name for r in runs], [r.fingerprints for r in runs], [index[r.name] for r in runs], order, fields)
    return len(order), index


def metrics_every_system_has(runs: Sequence[SystemRun]) -> tuple[list[SystemRun], list[str]]:
    """The runs restricted to the metrics every system has, and one note per metric left out (which systems have it):
    prediction files scored with one preset differ only in the metrics some files lack a field for (perplexity needs
    each record's gold NLL)."""
    common = set.intersection(*(set(run.metrics) for run in runs))
    notes = []
    for identity in sorted(set().union(*(set(run.metrics) for run in runs)) - common):
        having = [run for run in runs if identity in run.metrics]
        notes.append(f"{having[0].metrics[identity].spec}: only {', '.join(r.name for r in having)} (the other "
                     "systems' files have no field for it)")
    return [run.restricted(common) for run in runs], notes


def _columns(runs: Sequence[SystemRun]) -> list[Column]:
    first = runs[0]
    columns = []
    for identity, metric in first.metrics.items():
        missing = [r.name for r in runs if identity not in r.metrics]
        if missing:
            raise ConfigError(f"metric {metric.spec} ({identity}) is missing for {', '.join(missing)}: score every "
                              "system with the same preset, metrics and version")
        for key in metric.keys:
            columns.append(Column(metric.spec, key, f"{metric.label}:{key}", metric.higher_is_better,
                                  metric.display_factor, first.signatures[identity], identity))
    return columns


def compare(runs: Sequence[SystemRun], baseline: str | None = None, test: str = "ar", resamples: int = 10_000,
            seed: int = 12345, adjust_method: str = "holm", alpha: float = 0.05, family: str = "column",
            ci_resamples: int = 1000, loop_resamples: int = 0, groups: bool = True,
            ceilings: Sequence[str] = (), progress: Callable[[str], None] | None = None) -> Comparison:
    """Compare systems on every metric key. ``loop_resamples``: resamples for metrics without a vectorised form
    (self-BLEU, MORPHEUS P-Co, ...; each resample re-aggregates the corpus) — 0 leaves them untested."""
    start = time.perf_counter()
    if len(runs) < 2:
        raise ConfigError("compare needs at least two systems")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ConfigError(f"system names must be unique: {names}")
    baseline = baseline or names[0]
    if baseline not in names:
        raise ConfigError(f"baseline {baseline!r} is not one of the systems: {', '.join(names)}")
    if test not in TESTS or family not in FAMILIES:
        raise ConfigError(f"test must be one of {', '.join(TESTS)} and family one of {', '.join(FAMILIES)}")
    if not 0 < alpha < 1:
        raise ConfigError("alpha must be between 0 and 1")
    by_name = {r.name: r for r in runs}
    n_common, index = _common_indices(runs)
    columns = _columns(runs)
    kind = "ar" if test == "ar" else "bootstrap"
    draws = Draws(kind, n_common, resamples, seed) if test != "t" else None
    ci_draws = {}  # per item count: one bootstrap draw shared by all systems with that many items
    cells: dict[tuple[str, int], Cell] = {}
    untested: dict[int, str] = {}
    no_ci: dict[int, str] = {}
    tested: dict[tuple[str, str, int], PairedResult] = {}  # (system, other, column) -> result

    def sub(name: str, identity: str) -> list[Stats]:
        stats = by_name[name].stats[identity]
        return [stats[i] for i in index[name]]

    def pair_results(a: str, b: str, identity: str) -> dict[str, PairedResult] | str:
        """The pair's test results on every key of the metric, or why it cannot be tested."""
        metric = by_name[a].metrics[identity]
        stats_a, stats_b = sub(a, identity), sub(b, identity)
        if test == "t":
            if metric.item_values(stats_a[0]) is None:
                return "no per-item values (corpus-level metric): use --test ar"
            return {k: paired_t_test(metric, stats_a, stats_b, k) for k in metric.keys}
        if test == "bootstrap" and metric.bootstrap_bias():
            return f"no paired bootstrap: {metric.bootstrap_bias()}"
        vectorised = is_vectorised(metric, stats_a)
        if not vectorised and loop_resamples <= 0:
            return "no vectorised form (each resample re-aggregates the corpus): pass --loop-resamples N to test it"
        use = draws if vectorised else Draws(kind, n_common, loop_resamples, seed)
        return paired_tests(metric, stats_a, stats_b, test, use.resamples, seed, draws=use)

    for identity in dict.fromkeys(c.identity for c in columns):
        cols = [j for j, c in enumerate(columns) if c.identity == identity]
        if progress:
            progress(columns[cols[0]].spec)
        for name in names:
            run = by_name[name]
            values = run.values[identity]
            cis: dict[str, tuple[float, float]] = {}
            metric = run.metrics[identity]
            slow = not is_vectorised(metric, run.stats[identity])
            if metric.bootstrap_bias() or slow:
                for j in cols:
                    no_ci[j] = metric.bootstrap_bias() or "no vectorised form"
            elif ci_resamples > 0:
                from .stats import bootstrap_intervals

                n = len(run.stats[identity])
                ci_draws.setdefault(n, Draws("bootstrap", n, ci_resamples, seed))
                cis = bootstrap_intervals(metric, run.stats[identity], draws=ci_draws[n])
            for j in cols:
                cells[(name, j)] = Cell(values[columns[j].key], cis.get(columns[j].key))
        for name in names:
            if name == baseline:
                continue
            results = pair_results(baseline, name, identity)
            if isinstance(results, str):
                for j in cols:
                    untested[j] = results
                continue
            for j in cols:
                tested[(baseline, name, j)] = results[columns[j].key]
    # multiple-comparison correction of the tests against the baseline
    families: dict[object, list[tuple[str, int]]] = {}
    for (_, name, j) in tested:
        families.setdefault(j if family == "column" else "table", []).append((name, j))
    for members in families.values():
        adjusted = adjust([tested[(baseline, n, j)].p_value for n, j in members], adjust_method)
        for (n, j), p_adj in zip(members, adjusted):
            cell = cells[(n, j)]
            cell.p, cell.p_adjusted = tested[(baseline, n, j)].p_value, p_adj
            cell.significant = p_adj < alpha
    if groups:
        _tie_groups(columns, names, cells, untested, ceilings, pair_results, adjust_method, alpha, tested, baseline)
    return Comparison(names, baseline, columns, cells, test, resamples, seed, adjust_method, alpha, family,
                      ci_resamples, {r.name: len(r.ids) for r in runs}, n_common, list(ceilings), untested, no_ci,
                      time.perf_counter() - start)


def ranked(columns: Sequence[Column], j: int, names: Sequence[str], cells: dict, ceilings: Sequence[str] = ()) -> list[str]:
    """Systems best first on column ``j`` (ceilings such as the gold references are not ranked)."""
    col = columns[j]
    pool = [n for n in names if n not in ceilings]
    return sorted(pool, key=lambda n: -cells[(n, j)].value if col.higher_is_better else cells[(n, j)].value)


def _tie_groups(columns, names, cells, untested, ceilings, pair_results, adjust_method, alpha, tested, baseline):
    cache: dict[tuple[str, str, str], dict[str, PairedResult] | str] = {}

    def result(a: str, b: str, j: int) -> PairedResult | None:
        identity = columns[j].identity
        if (a, b, j) in tested:
            return tested[(a, b, j)]
        if (b, a, j) in tested:
            return tested[(b, a, j)]
        if (a, b, identity) not in cache:
            cache[(a, b, identity)] = pair_results(a, b, identity)
        got = cache[(a, b, identity)]
        return None if isinstance(got, str) else got[columns[j].key]

    for j in range(len(columns)):
        if j in untested:
            continue
        remaining = ranked(columns, j, names, cells, ceilings)
        group = 0
        while remaining:
            group += 1
            leader, rest = remaining[0], remaining[1:]
            cells[(leader, j)].group = group
            results = [result(leader, other, j) for other in rest]
            adjusted = adjust([r.p_value for r in results], adjust_method) if results else []
            joined = [o for o, p in zip(rest, adjusted) if p >= alpha]
            for other in joined:
                cells[(other, j)].group = group
            remaining = [o for o in rest if o not in joined]


def load_runs(paths: Sequence[str], names: Sequence[str] | None, score: Callable[[str], object]) -> list[SystemRun]:
    """Systems from score JSONs (``pdg-eval score --json``) or from prediction files scored by ``score(path)``."""
    if names and len(names) != len(paths):
        raise ConfigError(f"{len(names)} --name value(s) for {len(paths)} system(s)")
    runs = []
    for k, path in enumerate(paths):
        name = names[k] if names else Path(path).stem
        if is_score_json(path):
            runs.append(SystemRun.from_score_json(name, path))
        else:
            runs.append(SystemRun.from_score_run(name, score(path), file_sha256(path)))
    return runs


def is_score_json(path: str) -> bool:
    """Whether ``path`` is a score JSON: a ``.json`` file naming ``pdg_eval_version`` near its start (read as bytes,
    so that any file can be asked)."""
    if not path.endswith(".json"):
        return False
    with open(path, "rb") as handle:
        head = handle.read(200)
    return b'"pdg_eval_version"' in head


def _check_item_stats(source: str, spec: str, metric: Metric, stats: list[Stats]) -> None:
    """Refuse per-item statistics ``metric`` cannot read (a hand-edited or corrupt score JSON): the resampling form the
    tests use is built once here, over every item, so a wrong shape or type fails before any test runs."""
    if not stats:
        return
    try:
        pair_form(metric, stats, stats)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, ZeroDivisionError) as exc:
        raise InputError(source, None, "items.stats", f"the statistics of {spec} are not statistics it can read "
                                                      f"({type(exc).__name__}: {str(exc)[:120]})") from None


def _score_json_doc(path: str | Path) -> dict:
    """A score JSON decoded (:func:`~pdg_eval.inputs.decode_json`; ``NaN`` allowed, the writer emits it for undefined
    values) and checked against ``schemas/score.schema.json`` and for one statistic and fingerprint per id."""
    source = str(path)
    doc = decode_json(read_text(path), source, field=None, finite=False)
    if isinstance(doc, dict) and "metrics" in doc and "items" not in doc:
        raise InputError(source, None, "items", "no per-item statistics: write it with `pdg-eval score --json` "
                                                "(without --no-item-stats)")
    problem = schema_problem(doc, "score")
    if problem:
        raise InputError(source, None, *problem)
    ids = doc["items"]["ids"]
    if len(set(ids)) != len(ids):
        first = {}
        twice = next(k for k, item in enumerate(ids) if first.setdefault(item, k) != k)
        raise InputError(source, None, f"items.ids.{twice}", f"duplicate id {ids[twice]!r} (first at "
                                                             f"items.ids.{first[ids[twice]]})")
    n_ids = len(ids)
    for kind, per_item in (("stats", doc["items"]["stats"]), ("fingerprints", doc["items"].get("fingerprints", {}))):
        for key, values in per_item.items():
            if len(values) != n_ids:
                raise InputError(source, None, f"items.{kind}", f"{len(values)} values for {n_ids} ids ({key})")
    return doc


def difference_intervals(runs: Sequence[SystemRun], cmp: Comparison, resamples: int = 1000, seed: int = 12345,
                         confidence: float = 0.95) -> dict[tuple[str, int], tuple[float, float, float] | str]:
    """Per (system, column) against the baseline: the difference and its paired bootstrap percentile interval
    ``(delta, low, high)`` on the common items, or why there is none (a bootstrap that misstates the metric, no
    vectorised form)."""
    by_name = {r.name: r for r in runs}
    n_common, index = _common_indices(runs)
    draws = Draws("bootstrap", n_common, resamples, seed)
    out: dict[tuple[str, int], tuple[float, float, float] | str] = {}
    base = by_name[cmp.baseline]
    for identity in dict.fromkeys(c.identity for c in cmp.columns):
        cols = [j for j, c in enumerate(cmp.columns) if c.identity == identity]
        metric = base.metrics[identity]
        stats_a = [base.stats[identity][i] for i in index[cmp.baseline]]
        why = cmp.no_ci.get(cols[0])  # the comparison's reason for giving this metric no bootstrap interval
        for name in cmp.systems:
            if name == cmp.baseline:
                continue
            if why:
                out.update({(name, j): why for j in cols})
                continue
            stats_b = [by_name[name].stats[identity][i] for i in index[name]]
            results = paired_tests(metric, stats_a, stats_b, "bootstrap", resamples, seed, confidence=confidence,
                                   draws=draws)
            for j in cols:
                result = results[cmp.columns[j].key]
                out[(name, j)] = (result.delta, *result.ci)
    return out
