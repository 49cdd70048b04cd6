"""The scoring engine: stream records once, collect each metric's per-item statistics, aggregate.

Memory holds only the statistics the chosen metrics need (a few numbers per item for
sentence-level metrics; token ids for corpus-level Distinct and self-BLEU).
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from .errors import ConfigError, InputError
from .metrics.base import Metric, Signature, create_metric, parse_metric_spec
from .presets import get_preset
from .records import Record, check_consistent
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


@dataclass(frozen=True)
class ModelSlot:
    """A model that preset entries tagged ``@<tag>`` and explicit specs of ``metric`` need."""

    tag: str
    metric: str
    option: str
    build: str
    what: str


MODEL_SLOTS = {slot.tag: slot for slot in [
    ModelSlot("nli", "c-score", "--nli-model", "pdg-eval scorers train nli --out DIR", "an NLI model"),
    ModelSlot("cohcon", "cohcon", "--cohcon-model", "pdg-eval scorers train cohcon --out DIR",
              "a Con/Coh-Con triple classifier"),
]}


def split_model_tag(spec: str) -> tuple[str, str | None]:
    """``"c-score:chanliang@nli"`` → ``("c-score:chanliang", "nli")``; specs without a model tag keep theirs."""
    head, _, tag = spec.rpartition("@")
    return (head, tag) if tag in MODEL_SLOTS else (spec, None)


def missing_model_note(slot: ModelSlot) -> str:
    return f"needs {slot.what}: pass {slot.option} DIR (build one with `{slot.build}`)"


def requested_metrics(preset: str | None, extra: Sequence[str] = (),
                      models: dict[str, str | None] | None = None) -> list[MetricSpec]:
    """Metric specs of a preset (``pdg`` when neither a preset nor metrics are given) plus extra specs.

    Preset entries ending in ``?`` run only when the records have the fields they need; entries ending in
    ``@nli`` / ``@cohcon`` need that model (``models[tag]``), which is also filled into explicit specs of
    the slot's metric (``c-score`` / ``cohcon``) that name no model.
    """
    models = models or {}
    specs: list[MetricSpec] = []
    if preset or not extra:
        name = preset or "pdg"
        for spec in get_preset(name).metrics:
            spec, tag = split_model_tag(spec)
            if tag:
                model = models.get(tag)
                specs.append(MetricSpec(f"{spec},model={model}", False, name) if model
                             else MetricSpec(spec, False, name, unavailable=missing_model_note(MODEL_SLOTS[tag])))
                continue
            specs.append(MetricSpec(spec.rstrip("?"), spec.endswith("?"), name))
    for spec in extra:
        metric_name = spec.split(",")[0].split(":")[0]
        for slot in MODEL_SLOTS.values():
            if models.get(slot.tag) and metric_name == slot.metric and "model=" not in spec:
                spec = f"{spec},model={models[slot.tag]}"
        specs.append(MetricSpec(spec))
    return specs


def instantiate(spec: MetricSpec, tokenizer: str | None = None) -> Metric:
    """Build a metric; ``tokenizer`` overrides the tokenizer of every metric that tokenizes."""
    name, variant, options = parse_metric_spec(spec.spec)
    metric = create_metric(name, variant, options)
    if tokenizer and metric.tokenizer is not None and metric.tokenizer.name != tokenizer:
        metric = create_metric(name, variant, {**options, "tok": tokenizer})
    metric.preset = spec.preset
    return metric


def _has_field(record: Record, name: str) -> bool:
    return getattr(record, name) is not None


def prepare_metrics(specs: Sequence[MetricSpec], first: Record, tokenizer: str | None = None
                    ) -> tuple[list[Metric], list[str]]:
    """Instantiate the requested metrics that can run on records like ``first``; returns (metrics, skipped notes)."""
    metrics: list[Metric] = []
    skipped: list[str] = []
    seen_signatures: set[str] = set()
    for spec in specs:
        if spec.unavailable:
            skipped.append(f"{spec.spec}: {spec.unavailable}")
            continue
        metric = instantiate(spec, tokenizer)
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


def score_records(records: Iterable[Record], specs: Sequence[MetricSpec], tokenizer: str | None = None,
                  source: str = "<records>", progress: bool = False) -> ScoreRun:
    """Score a stream of records with the requested metrics."""
    stream: Iterator[Record] = check_consistent(records)
    first = next(stream, None)
    if first is None:
        raise InputError(source, None, None, "no records to score")
    metrics, skipped = prepare_metrics(specs, first, tokenizer)

    warnings: list[str] = []
    empty_lines: list[str] = []
    cjk_warned = False
    segmenting = all(m.tokenizer is None or m.tokenizer.segments_cjk for m in metrics)
    stats: list[list] = [[] for _ in metrics]
    ids: list[str] = []
    iterator: Iterable[Record] = itertools.chain([first], stream)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="scoring", unit=" rec", file=sys.stderr, mininterval=0.5)
    chunk: list[Record] = []

    def flush() -> None:
        for metric, bucket in zip(metrics, stats):
            bucket.extend(metric.items_stats(chunk))
        chunk.clear()

    for record in iterator:
        ids.append(record.id)
        if not record.response.strip():
            empty_lines.append(f"{record.source}:{record.line}" if record.line else record.id)
        if not cjk_warned and not segmenting and contains_cjk(record.response):
            cjk_warned = True
            warnings.append(f"{record.source}:{record.line}: response: contains CJK characters but some tokenizer "
                            "does not segment them; use --tokenizer char, zh or jieba for Chinese")
        for metric in metrics:
            for name in metric.requires:
                if not _has_field(record, name):
                    raise InputError(record.source, record.line, name,
                                     f"missing; required by {metric.label} (present on the first record)")
        chunk.append(record)
        if len(chunk) >= CHUNK_SIZE:
            flush()
    flush()
    if empty_lines:
        shown = ", ".join(empty_lines[:3]) + (" ..." if len(empty_lines) > 3 else "")
        warnings.append(f"{len(empty_lines)} empty response(s) ({shown}): {EMPTY_RESPONSE_RULE}")
    results = [MetricResult(m, m.aggregate(s), s) for m, s in zip(metrics, stats)]
    preset = specs[0].preset if specs and specs[0].preset else None
    return ScoreRun(source, len(ids), preset, results, ids, warnings, skipped)
