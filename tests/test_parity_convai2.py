"""Parity with the reference libraries on the full ConvAI2 valid set (7,801 turns): every per-item
value identical (==), every corpus value equal to 1e-9. System: SC-GPT ``hyp-normal_ord``, a
published DialoGPT output in dataset order (data/outputs/sc_gpt)."""

from __future__ import annotations

import pytest

from pdg_eval import reference
from pdg_eval.metrics.base import build_metric
from pdg_eval.readers import open_records
from pdg_eval.records import Record

from tests.conftest import shared_or_skip

pytestmark = pytest.mark.slow  # ConvAI2-scale runs (still part of the default test command)


@pytest.fixture(scope="module")
def records(convai2_valid) -> list[Record]:
    hyp = shared_or_skip("data", "outputs", "sc_gpt", "hyp-normal_ord")
    recs = list(open_records(str(hyp), "lines", dataset=str(convai2_valid)))
    assert len(recs) == 7801
    return recs


_REFERENCE_CACHE: dict[str, tuple] = {}


def cached(ref_fn, records: list[Record]):
    """Reference results reused across the parametrized stats (the references are the slow side)."""
    key = getattr(ref_fn, "__name__", repr(ref_fn))
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = ref_fn(records)
    return _REFERENCE_CACHE[key]


def ours(spec: str, records: list[Record]):
    metric = build_metric(spec)
    stats = [metric.item_stats(r) for r in records]
    values = [metric.item_values(s) for s in stats] if metric.item_values(stats[0]) is not None else None
    return metric, values, metric.aggregate(stats)


PER_ITEM = [  # (spec, reference function, keys in reference order)
    ("bleu:nltk_sentence_avg", reference.nltk_sentence_avg, ["bleu-1", "bleu-2", "bleu-3", "bleu-4"]),
    ("bleu:parlai", reference.parlai_bleu, ["bleu-1", "bleu-2", "bleu-3", "bleu-4"]),
    ("bleu:clv_released", reference.clv_released, ["bleu-1", "bleu-2", "bleu-3", "bleu-4"]),
    ("bleu:idl_released", reference.idl_released, ["bleu-1"]),
    ("rouge:coco", reference.coco_rouge, ["rouge-l"]),
    ("distinct:per_response", reference.distinct_per_response, ["dist-1", "dist-2"]),
    ("f1", reference.parlai_f1, ["f1"]),
]


@pytest.mark.parametrize("spec,ref_fn,keys", PER_ITEM, ids=[p[0] for p in PER_ITEM])
def test_per_item_identical(records, spec, ref_fn, keys):
    _, values, agg = ours(spec, records)
    ref_items, ref_agg = ref_fn(records)
    assert [[v[k] for k in keys] for v in values] == ref_items
    assert agg == pytest.approx(ref_agg, abs=1e-12)


def test_nltk_sentence_avg_treebank(records):
    _, values, _ = ours("bleu,tok=treebank", records[:2000])
    ref_items, _ = reference.nltk_sentence_avg(records[:2000], tok="treebank")
    assert [[v[f"bleu-{n}"] for n in range(1, 5)] for v in values] == ref_items


ROUGE_PER_ITEM = [  # (spec prefix, reference, stat order in the reference rows, keys)
    ("rouge", reference.pltrdy_rouge, "rpf", ("rouge-1", "rouge-2", "rouge-l")),
    ("rouge:rouge_score", reference.rouge_score_f, "prf", ("rouge1", "rouge2", "rougeL")),
]


@pytest.mark.parametrize("stat", ["r", "p", "f"])
@pytest.mark.parametrize("prefix,ref_fn,order,keys", ROUGE_PER_ITEM, ids=["pltrdy", "rouge_score"])
def test_rouge_identical(records, prefix, ref_fn, order, keys, stat):
    _, values, _ = ours(f"{prefix},stat={stat}", records)
    ref_items, _ = cached(ref_fn, records)
    k = order.index(stat)
    assert [[v[key] for key in keys] for v in values] == [[p[k], p[3 + k], p[6 + k]] for p in ref_items]


CORPUS = [
    ("bleu:nltk_corpus", reference.nltk_corpus),
    ("bleu:sacrebleu", reference.sacrebleu_corpus),
    ("bleu:paa_precision", reference.paa_precision),
    ("bleu:coco", reference.coco_bleu),
    ("bleu:pal_swapped", lambda rs: reference.coco_bleu(rs, swapped=True)),
    ("rouge:pal_swapped", lambda rs: reference.coco_rouge(rs, swapped=True)),
    ("distinct:corpus", reference.distinct_corpus),
    ("distinct:paa", reference.distinct_paa),
]


@pytest.mark.parametrize("spec,ref_fn", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_values(records, spec, ref_fn):
    _, _, agg = ours(spec, records)
    _, ref_agg = ref_fn(records)
    assert agg == pytest.approx(ref_agg, abs=1e-9, rel=1e-12)


def test_texygen_self_bleu_all_others_identical(records):
    subset = records[:400]
    for gram in (2, 3):
        metric = build_metric(f"self-bleu,grams={gram}")
        from pdg_eval.metrics.selfbleu import self_bleu_all_others

        per = self_bleu_all_others([metric.item_stats(r) for r in subset], gram)
        ref_items, _ = reference.texygen_self_bleu(subset, gram=gram)
        assert per == [p[0] for p in ref_items]


def test_texygen_fast_self_bleu_is_texygen_on_the_first_500_responses(records):
    """Texygen's default get_score(is_fast=True): NLTK sentence_bleu of each of the first 500 responses against the
    other 499, mean; the later responses change nothing."""
    subset = records[:650]
    metric = build_metric("self-bleu:texygen_fast,grams=2")
    stats = [metric.item_stats(r) for r in subset]
    _, ref = reference.texygen_self_bleu(subset[:500], gram=2)
    assert metric.aggregate(stats) == ref
    assert metric.aggregate(stats) == metric.aggregate(stats[:500]) != build_metric("self-bleu,grams=2").aggregate(stats)
