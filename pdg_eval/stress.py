"""Metric stress test: what each persona/consistency metric rewards, on controlled perturbations of gold responses.

On ConvAI2 turns, the gold response is replaced by a perturbation and every metric scores each perturbation as its
own set of records (same ids, persona, context and references; only the response changes):

* ``gold``: unchanged; ``persona_copy``: one of the speaker's persona sentences, verbatim;
* ``persona_negated``: one of those sentences contradicted by :func:`negate` (turns whose persona has no sentence a
  template handles are left out and counted);
* ``partner_persona``: one of the partner's persona sentences (both-persona ConvAI2 file);
* ``other_dialogue``: the gold response of a turn of another dialogue; ``generic``: ``"i do not know ."``;
* ``later_turn``: the same speaker's next turn in the same dialogue (consistent, not coherent here);
* ``empty``: ``""``.

Seeded choices use one ``random.Random(f"{seed}:{perturbation}:{id}")`` per item, so an item's perturbation does not
depend on which other turns were selected. Orderings a valid metric respects (:data:`ORDERINGS`) are checked per
item, paired on the id: an ordering ``A < B`` *passes* on an item when A's value is strictly below B's (strictly
above for lower-is-better metrics), *ties* when they are equal and *fails* otherwise; the pass rate is passes / paired
items, ties and fails are reported beside it (pass + tie + fail = 1).
"""

from __future__ import annotations

import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from . import __version__
from .errors import InputError
from .metrics.base import Metric
from .readers.parlai import ConvAI2Turn, read_convai2, turn_record
from .records import Record
from .scoring import CHUNK_SIZE, MetricSpec, entry_spec, prepare_metrics, requested_metrics
from .tokenize import casefold_spaces

PERTURBATIONS = ("gold", "persona_copy", "persona_negated", "partner_persona", "other_dialogue", "generic",
                 "later_turn", "empty")
GENERIC = "i do not know ."
#: every persona/consistency metric; ``@nli`` / ``@cohcon`` ones run only with that model (see ``scoring.MODEL_SLOTS``)
DEFAULT_METRICS = ("p-f1:msp", "p-f1:idl", "p-cover:dhap", "p-cover:msp", "p-cover:morpheus", "p-cover:idl_released",
                   "p-cosine:max", "p-cosine:concat", "c-score:paml_sum@nli", "c-score:chanliang@nli",
                   "c-score:pal_max@nli", "c-score:idl_pairwise@nli", "cohcon:released@cohcon",
                   "cohcon:training@cohcon")
NO_IDF = "needs a global idf table: pass --idf FILE (MSP's en.word.pkl was never released)"


@dataclass(frozen=True)
class Ordering:
    """``worse`` must score below ``better`` on the keys ``applies`` accepts."""

    worse: str
    better: str
    applies: Callable[[str], bool]
    scope: str

    @property
    def name(self) -> str:
        return f"{self.worse} < {self.better}"


ORDERINGS = (
    Ordering("persona_negated", "gold", lambda key: True, "all keys"),
    Ordering("other_dialogue", "gold", lambda key: True, "all keys"),
    Ordering("later_turn", "gold", lambda key: key == "coh-con", "coh-con"),
    Ordering("persona_copy", "gold", lambda key: key == "coh-con", "coh-con (must not beat gold: pass + tie)"),
)

# -- negation templates ---------------------------------------------------------------------------------------------

#: verbs in ConvAI2 persona sentences that take do-support: "i have a dog ." → "i do not have a dog ."
DO_VERBS = ("have", "like", "enjoy", "own", "live", "work", "play", "read", "eat", "drive", "want", "need", "go",
            "listen", "watch", "collect", "drink", "think", "believe", "know", "prefer", "wear", "volunteer", "cook",
            "sing", "dance", "run", "write", "teach", "travel", "spend", "take", "get", "use", "ride")
#: (pattern on the lower-cased, whitespace-normalised sentence, replacement); the first that matches is used
TEMPLATES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), r) for p, r in (
    (r"^i (love|adore) (.*)$", r"i hate \2"),
    (r"^i (hate|detest|dislike) (.*)$", r"i love \2"),
    (r"^(i am|i'm) (.*)$", r"i am not \2"),
    (r"^i was (.*)$", r"i was not \1"),
    (r"^i have been (.*)$", r"i have not been \1"),
    (r"^i've (.*)$", r"i have not \1"),
    (r"^i can (.*)$", r"i cannot \1"),
    (r"^i (will|could|would) (.*)$", r"i \1 not \2"),
    (r"^my (.+?) (is|are|was|were) (.*)$", r"my \1 \2 not \3"),
    (r"^i have (\w+(?:ed|en)) (.*)$", r"i have not \1 \2"),
    (rf"^i ({'|'.join(DO_VERBS)}) (.*)$", r"i do not \1 \2"),
))
ALREADY_NEGATED = re.compile(r"\b(not|never|no|cannot)\b|n't")


def negate(sentence: str) -> str | None:
    """The sentence contradicted by the first template of :data:`TEMPLATES` that matches it, or None (a sentence that
    already has a negation, or that no template handles). Examples: "i have a dog ." → "i do not have a dog .",
    "i love cats." → "i hate cats.", "i am a nurse." → "i am not a nurse.", "my dog is old." → "my dog is not
    old."."""
    text = casefold_spaces(sentence)
    if ALREADY_NEGATED.search(text):
        return None
    for pattern, replacement in TEMPLATES:
        if pattern.match(text):
            return pattern.sub(replacement, text)
    return None


# -- perturbations --------------------------------------------------------------------------------------------------

@dataclass
class Perturbation:
    """One perturbation's records and the selected turns it left out (with why)."""

    name: str
    records: list[Record]
    left_out: int = 0
    reason: str = ""


def item_rng(seed: int, name: str, turn: ConvAI2Turn) -> random.Random:
    return random.Random(f"{seed}:{name}:{turn.dialogue}-{turn.turn}")


def select_turns(n_turns: int, limit: int, seed: int) -> list[int]:
    """Indices of ``limit`` turns (all when fewer), drawn with ``random.Random(seed)``, in file order."""
    return sorted(random.Random(seed).sample(range(n_turns), min(limit, n_turns)))


def dialogue_spans(turns: Sequence[ConvAI2Turn]) -> dict[int, tuple[int, int]]:
    """Per dialogue, the [start, end) indices of its turns (turns are in file order, dialogue by dialogue)."""
    spans: dict[int, tuple[int, int]] = {}
    for i, turn in enumerate(turns):
        start = spans.get(turn.dialogue, (i, i))[0]
        spans[turn.dialogue] = (start, i + 1)
    return spans


def perturb(turns: Sequence[ConvAI2Turn], selected: Iterable[int], seed: int, dataset: str = "<dataset>",
            names: Sequence[str] = PERTURBATIONS) -> dict[str, Perturbation]:
    """The records of each perturbation in ``names`` for the turns at ``selected`` (indices into ``turns``, the
    whole file, which supplies other dialogues and later turns)."""
    spans = dialogue_spans(turns)
    selected = list(selected)
    has_partner = any(t.partner_persona for t in turns)

    def response(name: str, i: int) -> str | None:
        turn = turns[i]
        rng = item_rng(seed, name, turn)
        if name == "gold":
            return turn.response
        if name == "persona_copy":
            return rng.choice(turn.persona) if turn.persona else None
        if name == "persona_negated":
            negated = [n for n in (negate(s) for s in turn.persona) if n]
            return rng.choice(negated) if negated else None
        if name == "partner_persona":
            return rng.choice(turn.partner_persona) if turn.partner_persona else None
        if name == "other_dialogue":
            start, end = spans[turn.dialogue]
            if end - start == len(turns):
                return None
            j = rng.randrange(len(turns) - (end - start))
            return turns[j if j < start else j + end - start].response
        if name == "generic":
            return GENERIC
        if name == "later_turn":
            later = i + 1 < len(turns) and turns[i + 1].dialogue == turn.dialogue
            return turns[i + 1].response if later else None
        if name == "empty":
            return ""
        raise ValueError(f"unknown perturbation {name!r}")

    reasons = {"persona_copy": "no persona", "persona_negated": "no persona sentence a negation template handles",
               "other_dialogue": "the dataset has one dialogue", "later_turn": "last turn of its dialogue",
               "partner_persona": "no partner's persona"}
    out = {}
    for name in names:
        if name == "partner_persona" and not has_partner:
            out[name] = Perturbation(name, [], len(selected), "the dataset has no partner's persona lines: give the "
                                                              "both-persona file (--partner-dataset)")
            continue
        records, left_out = [], 0
        for i in selected:
            text = response(name, i)
            if text is None:
                left_out += 1
            else:
                records.append(turn_record(turns[i], dataset, response=text))
        out[name] = Perturbation(name, records, left_out, reasons.get(name, "") if left_out else "")
    return out


def add_partner_personas(turns: Sequence[ConvAI2Turn], both: str | Path, dataset: str) -> None:
    """Fill ``partner_persona`` from a both-persona ConvAI2 file, aligned by (dialogue, turn); the gold responses must
    agree (the same split), else :class:`InputError` at the both file's line."""
    other = list(read_convai2(both))
    if not any(match.partner_persona for match in other):
        raise InputError(str(both), None, None, "no \"partner's persona:\" lines: not a both-persona ConvAI2 file")
    if len(other) != len(turns):
        raise InputError(str(both), None, None, f"{len(other)} turns, but {dataset} has {len(turns)}: not the same "
                                                "split")
    for turn, match in zip(turns, other):
        if (turn.dialogue, turn.turn, turn.response) != (match.dialogue, match.turn, match.response):
            raise InputError(str(both), match.line, "label", f"turn {match.dialogue}-{match.turn} differs from "
                                                             f"{dataset}:{turn.line}: not the same split")
        turn.partner_persona = list(match.partner_persona)


# -- scoring --------------------------------------------------------------------------------------------------------

def stress_specs(extra: Sequence[str], models: dict[str, str | None], idf: str | None) -> list[MetricSpec]:
    """``extra`` (``-m``) specs, or :data:`DEFAULT_METRICS` (``p-cover:msp`` with ``idf`` or skipped without)."""
    if extra:
        return requested_metrics(None, extra, models)
    specs = []
    for entry in DEFAULT_METRICS:
        if entry == "p-cover:msp":
            specs.append(MetricSpec(f"{entry},idf={idf}") if idf else MetricSpec(entry, unavailable=NO_IDF))
        else:
            specs.append(entry_spec(entry, models))
    return specs


@dataclass
class Check:
    """One ordering on one metric key, over the items both perturbations have."""

    ordering: str
    scope: str
    items: int
    passed: int
    ties: int
    failed: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.items if self.items else None

    @property
    def tie_rate(self) -> float | None:
        return self.ties / self.items if self.items else None


@dataclass
class MetricStress:
    metric: Metric
    key: str
    means: dict[str, float]
    #: per perturbation: id → the item's value (``item_values``, or the metric on that item alone when it has none)
    values: dict[str, dict[str, float]]
    per_item: str
    checks: list[Check] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.metric.label}:{self.key}"


@dataclass
class StressRun:
    settings: dict[str, Any]
    perturbations: dict[str, Perturbation]
    results: list[MetricStress]
    skipped: list[str]


def item_scores(metric: Metric, stats: Any) -> dict[str, float]:
    """The item's values: ``item_values``, or, for metrics without one (MORPHEUS P-Co, IDL's pairwise rates), the
    metric aggregated over that item alone."""
    values = metric.item_values(stats)
    return metric.aggregate([stats]) if values is None else values


def compare_items(worse: dict[str, float], better: dict[str, float], higher_is_better: bool = True
                  ) -> tuple[int, int, int]:
    """(passes, ties, fails) of ``worse < better`` over the ids both have (``>`` when lower is better)."""
    passed = ties = failed = 0
    for item, low in worse.items():
        high = better.get(item)
        if high is None:
            continue
        if low == high:
            ties += 1
        elif (low < high) == higher_is_better:
            passed += 1
        else:
            failed += 1
    return passed, ties, failed


def score_perturbations(perturbations: dict[str, Perturbation], specs: Sequence[MetricSpec],
                        progress: bool = False) -> tuple[list[MetricStress], list[str]]:
    """Means per perturbation, per-item values and the :data:`ORDERINGS` checks of every metric key."""
    filled = [p for p in perturbations.values() if p.records]
    if not filled:
        raise InputError("<stress>", None, None, "no records to score")
    metrics, skipped = prepare_metrics(specs, filled[0].records[0])
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(p.records) for p in filled), desc="stress", unit=" rec", file=sys.stderr,
                   mininterval=0.5)
    stats: dict[str, list[list]] = {}
    for p in filled:
        stats[p.name] = [[] for _ in metrics]
        for start in range(0, len(p.records), CHUNK_SIZE):
            chunk = p.records[start:start + CHUNK_SIZE]
            for metric, bucket in zip(metrics, stats[p.name]):
                bucket.extend(metric.items_stats(chunk))
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    results = []
    for m, metric in enumerate(metrics):
        probe = metric.item_values(stats[filled[0].name][m][0])
        # once per metric, not per key: the aggregate and every item's values of each perturbation
        aggregates = {p.name: metric.aggregate(stats[p.name][m]) for p in filled}
        per_item = {p.name: [(r.id, item_scores(metric, s)) for r, s in zip(p.records, stats[p.name][m])]
                    for p in filled}
        for key in metric.keys:
            means = {name: aggregate[key] for name, aggregate in aggregates.items()}
            values = {name: {item: v for item, scores in items if (v := scores.get(key)) is not None}
                      for name, items in per_item.items()}
            result = MetricStress(metric, key, means, values, "item_values" if probe is not None else "item alone")
            for order in ORDERINGS:
                if order.applies(key) and order.worse in values and order.better in values:
                    passed, ties, failed = compare_items(values[order.worse], values[order.better],
                                                         metric.higher_is_better)
                    result.checks.append(Check(order.name, order.scope, passed + ties + failed, passed, ties, failed))
            results.append(result)
    return results, skipped


def stress(dataset: str, limit: int, seed: int, specs: Sequence[MetricSpec], partner_dataset: str | None = None,
           progress: bool = False) -> StressRun:
    """Draw ``limit`` turns of ``dataset`` with ``seed``, perturb their gold responses and score every perturbation."""
    turns = list(read_convai2(dataset))
    if not any(t.partner_persona for t in turns) and partner_dataset:
        add_partner_personas(turns, partner_dataset, dataset)
    selected = select_turns(len(turns), limit, seed)
    perturbations = perturb(turns, selected, seed, dataset)
    results, skipped = score_perturbations(perturbations, specs, progress)
    settings = {"pdg_eval_version": __version__, "dataset": dataset, "partner_dataset": partner_dataset,
                "dataset_turns": len(turns), "limit": limit, "selected": len(selected), "seed": seed,
                "specs": [s.spec for s in specs if not s.unavailable]}
    return StressRun(settings, perturbations, results, skipped)


# -- rendering ------------------------------------------------------------------------------------------------------

def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), "  ".join("-" * w for w in widths), *(fmt.format(*r) for r in rows)]
    return "\n".join(lines) + "\n"


def _scored(run: StressRun) -> list[str]:
    """The perturbations with records, in :data:`PERTURBATIONS` order."""
    return [n for n in PERTURBATIONS if n in run.perturbations and run.perturbations[n].records]


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def format_stress(run: StressRun) -> str:
    """Means per perturbation (display scale) and the ordering checks (% of paired items)."""
    from .report import display_value

    names = _scored(run)
    s = run.settings
    out = [f"pdg-eval {__version__} stress: {s['dataset']}, {s['selected']:,} of {s['dataset_turns']:,} turns, "
           f"seed {s['seed']}\n\nmean per perturbation (scale in the second column):\n"]
    rows = [[r.label, r.metric.scale_label, *(display_value(r.means[n], r.metric.display_factor) for n in names)]
            for r in run.results]
    out.append(_aligned(["metric:key", "scale", *names], rows))
    out.append("\nitems per perturbation: " + ", ".join(
        f"{p.name} {len(p.records)}" + (f" ({p.left_out} left out: {p.reason})" if p.left_out else "")
        for p in run.perturbations.values()) + "\n")
    out.append("\norderings, paired per item: pass = strictly in the right order, tie = equal, fail = reversed "
               "(% of paired items)\n")
    rows = [[r.label, c.ordering, str(c.items), _rate(c.pass_rate), _rate(c.tie_rate),
             _rate(c.failed / c.items if c.items else None)] for r in run.results for c in r.checks]
    out.append(_aligned(["metric:key", "ordering", "items", "pass %", "tie %", "fail %"], rows))
    alone = sorted({r.metric.label for r in run.results if r.per_item == "item alone"})
    if alone:
        out.append(f"per-item values of {', '.join(alone)}: the metric on the item alone (it has no per-item value)\n")
    out.append("\nsignatures:\n" + "".join(f"  {r.metric.signature()}\n" for r in run.results
                                           if r.key == r.metric.keys[0]))
    out.extend(f"skipped: {note}\n" for note in run.skipped)
    return "".join(out)


def stress_json(run: StressRun) -> dict[str, Any]:
    return {
        "settings": run.settings,
        "perturbations": {p.name: {"items": len(p.records), "left_out": p.left_out, "reason": p.reason}
                          for p in run.perturbations.values()},
        "metrics": [{"metric": r.metric.label, "key": r.key, "spec": r.metric.spec,
                     "signature": str(r.metric.signature()), "scale": r.metric.scale_label,
                     "display_factor": r.metric.display_factor, "higher_is_better": r.metric.higher_is_better,
                     "means": r.means, "per_item": r.per_item, "values": r.values,
                     "checks": [{"ordering": c.ordering, "scope": c.scope, "items": c.items, "passed": c.passed,
                                 "ties": c.ties, "failed": c.failed, "pass_rate": c.pass_rate, "tie_rate": c.tie_rate}
                                for c in r.checks]} for r in run.results],
        "skipped": run.skipped,
        "pass_rate_definition": "passed / items: items paired on id where the ordering holds strictly (ties and "
                                "reversals counted separately)",
    }


def normalised(run: StressRun) -> tuple[list[str], list[str], list[list[float]]]:
    """Metric labels, perturbations and per-metric min-max normalised means (0.5 where a metric is constant)."""
    names = _scored(run)
    grid = []
    for r in run.results:
        row = [r.means[n] for n in names]
        low, high = min(row), max(row)
        grid.append([(v - low) / (high - low) if high > low else 0.5 for v in row])
    return [r.label for r in run.results], names, grid


def plot_stress(run: StressRun, handle: Any) -> None:
    """Heatmap metrics × perturbations, colour normalised per metric, cells labelled with display values."""
    from .render import pyplot, save_figure
    from .report import display_value

    labels, names, grid = normalised(run)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 3, 0.45 * len(labels) + 1.6))
    ax.imshow(grid, cmap="viridis", aspect="auto", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i, r in enumerate(run.results):
        for j, n in enumerate(names):
            ax.text(j, i, display_value(r.means[n], r.metric.display_factor), ha="center", va="center", fontsize=7,
                    color="white" if grid[i][j] < 0.5 else "black")
    ax.set_title("mean per perturbation (colour: min-max per metric)")
    save_figure(fig, handle)
