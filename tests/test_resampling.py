"""The vectorised resampling forms give the loop's numbers: for every metric variant, on real ConvAI2 outputs,
the AR and bootstrap scores of each resample equal ``metric.aggregate`` on that resample, and so do the p-values."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from pdg_eval.metrics import load_all
from pdg_eval.metrics.base import METRICS, build_metric
from pdg_eval.metrics.forms import LinearForm
from pdg_eval.readers import open_records
from pdg_eval.resampling import Draws, LoopForm, ar_scores, bootstrap_scores, pair_form
from pdg_eval.stats import paired_tests
from tests.conftest import shared_or_skip

N_ITEMS = 90

#: conventions the registry-wide tests below leave out, and why
NEEDS_INPUT = {"p-cover:msp": "an idf table", "distinct:clv_s": "sampled candidates"}


def lexical_specs() -> list[str]:
    """Every registered convention that scores without a model, plus some non-default options."""
    load_all()
    specs = [f"{name}:{variant}" for name, family in sorted(METRICS.items())
             for variant, cls in family.variants.items()
             if not cls.needs_packages and f"{name}:{variant}" not in NEEDS_INPUT]
    return specs + ["bleu:nltk_sentence_avg,smooth=method1", "distinct:corpus,n=3,tok=treebank", "rouge:pltrdy,guards=clv",
                    "hits@1,ties=stable"]


LEXICAL_SPECS = lexical_specs()
#: forms each metric must get (the rest re-aggregate)
VECTORISED = {"bleu:nltk_sentence_avg", "bleu:sacrebleu", "bleu:paa_precision", "bleu:nltk_corpus", "distinct:corpus",
              "distinct:paa", "distinct:per_response", "rouge:pltrdy", "f1:parlai", "hits@1:scores", "ppl:token_micro"}


def _with_model_fields(records, seed):
    rng = random.Random(seed)
    out = []
    for r in records:
        scores = [rng.choice([0.0, 0.5, 1.0, rng.random()]) for _ in r.candidates]
        nll = [rng.choice([0.0, rng.random() * 5]) for _ in range(rng.randint(0, 12))]
        out.append(dataclasses.replace(r, candidate_scores=scores, nll=nll))
    return out


@pytest.fixture(scope="module")
def pair(convai2_valid):
    systems = []
    for k, name in enumerate(("hyp-normal_ord", "hyp-dg")):
        path = shared_or_skip("data", "outputs", "sc_gpt", name)
        records = list(open_records(str(path), "lines", dataset=str(convai2_valid)))[:N_ITEMS]
        systems.append(_with_model_fields(records, k))
    return systems


def _assert_same(left: dict, right: dict):
    for key in right:
        np.testing.assert_allclose(left[key], right[key], rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("spec", LEXICAL_SPECS)
def test_forms_equal_re_aggregation(pair, spec):
    metric = build_metric(spec)
    a, b = metric.items_stats(pair[0]), metric.items_stats(pair[1])
    form, loop = pair_form(metric, a, b), LoopForm(metric, a, b)
    if spec in VECTORISED:
        assert not isinstance(form, LoopForm), spec
    ar = Draws("ar", len(a), 24, seed=5)
    for ours, theirs in zip(ar_scores(form, ar), ar_scores(loop, ar)):
        _assert_same(ours, theirs)
    bs = Draws("bootstrap", len(a), 24, seed=6)
    for ours, theirs in zip(bootstrap_scores(form, bs), bootstrap_scores(loop, bs)):
        _assert_same(ours, theirs)


@pytest.mark.parametrize("spec", ["bleu:sacrebleu", "distinct:corpus", "rouge:pltrdy,guards=clv", "ppl:sentence_macro"])
@pytest.mark.parametrize("test", ["ar", "bootstrap"])
def test_p_values_equal_loop(pair, spec, test):
    metric = build_metric(spec)
    a, b = metric.items_stats(pair[0]), metric.items_stats(pair[1])
    fast = paired_tests(metric, a, b, test, resamples=60, seed=9)
    slow = paired_tests(metric, a, b, test, resamples=60, seed=9, engine="loop")
    assert {k: r.p_value for k, r in fast.items()} == {k: r.p_value for k, r in slow.items()}
    if test == "bootstrap":
        for key in fast:
            assert fast[key].ci == pytest.approx(slow[key].ci, abs=1e-12)


def test_identical_systems_are_exactly_equal_under_every_form(pair):
    for spec in ("bleu:sacrebleu", "distinct:corpus", "f1:parlai"):
        metric = build_metric(spec)
        a = metric.items_stats(pair[0])
        x, y = ar_scores(pair_form(metric, a, a), Draws("ar", len(a), 30, 1))
        assert all(np.array_equal(x[k], y[k]) for k in x), spec


def test_bootstrap_draws_do_not_depend_on_chunking():
    draws = Draws("bootstrap", 7801, 1030, seed=3)  # 3 chunks of 512 / 512 / 6 rows
    idx = np.concatenate(list(draws.index_chunks()))
    assert np.array_equal(idx, np.random.default_rng(3).choice(7801, size=(1030, 7801), replace=True))
    assert np.array_equal(draws.counts.sum(axis=1), np.full(1030, 7801))


def test_linear_form_is_used_for_sentence_metrics(pair):
    metric = build_metric("f1:parlai")
    assert isinstance(pair_form(metric, metric.items_stats(pair[0]), metric.items_stats(pair[1])), LinearForm)
