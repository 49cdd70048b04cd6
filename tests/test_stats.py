"""Paired significance tests (pdg_eval.stats): null behaviour (identical systems, exchangeable A/A pairs give
uniform p-values), power on a clearly better system, exact values of McNemar / Holm / BH, and bad input."""

from __future__ import annotations

import random

import pytest
from scipy.stats import kstest, ttest_rel

from pdg_eval.errors import ConfigError
from pdg_eval.metrics.base import build_metric
from pdg_eval.readers import open_records
from pdg_eval.stats import (adjust, mcnemar_exact, paired_approximate_randomization, paired_bootstrap,
                            paired_t_test, wilcoxon_signed_rank)
from tests.conftest import shared_or_skip


@pytest.fixture(scope="module")
def two_systems(convai2_valid):
    """The first 60 ConvAI2 turns as answered by two published DialoGPT runs (dataset order)."""
    out = []
    for name in ("hyp-normal_ord", "hyp-dg"):
        path = shared_or_skip("data", "outputs", "sc_gpt", name)
        out.append(list(open_records(str(path), "lines", dataset=str(convai2_valid)))[:60])
    return out


def stats_of(spec, records):
    metric = build_metric(spec)
    return metric, metric.items_stats(records)


@pytest.mark.parametrize("spec,key", [("f1:parlai", "f1"), ("bleu:sacrebleu", "bleu-4"), ("distinct:corpus", "dist-2")])
def test_identical_systems(two_systems, spec, key):
    metric, stats = stats_of(spec, two_systems[0])
    ar = paired_approximate_randomization(metric, stats, stats, key, resamples=99, seed=1)
    bs = paired_bootstrap(metric, stats, stats, key, resamples=99, seed=1)
    assert ar.p_value == 1.0 and bs.p_value == 1.0 and ar.delta == 0 and bs.ci == (0.0, 0.0)
    strict = paired_approximate_randomization(metric, stats, stats, key, resamples=99, seed=1, count="sacrebleu")
    assert strict.p_value == 1 / 100  # sacreBLEU's rule: nothing is strictly more extreme than a zero difference
    assert ar.signature.startswith(f"test:paired_ar|key:{key}|n:60|resamples:99|seed:1|count:ge|version:pdg-eval-")


def test_clearly_better_system(two_systems):
    records = two_systems[0]
    gold = [r.__class__(**{**{f: getattr(r, f) for f in r.__slots__}, "response": r.reference}) for r in records]
    metric, stats_a = stats_of("bleu:sacrebleu", records)
    _, stats_b = stats_of("bleu:sacrebleu", gold)
    ar = paired_approximate_randomization(metric, stats_a, stats_b, "bleu-2", resamples=199, seed=3)
    bs = paired_bootstrap(metric, stats_a, stats_b, "bleu-2", resamples=199, seed=3)
    assert ar.p_value < 0.01 and bs.p_value < 0.01 and ar.delta > 50
    assert bs.ci[0] > 0  # the whole interval of B - A is positive


@pytest.mark.parametrize("spec,key,sims", [("f1:parlai", "f1", 200), ("bleu:sacrebleu", "bleu-2", 60)])
def test_exchangeable_pairs_give_uniform_p_values(two_systems, spec, key, sims):
    """Under the null (each item's two outputs assigned to A/B at random) AR p-values are uniform."""
    metric, first = stats_of(spec, two_systems[0])
    _, second = stats_of(spec, two_systems[1])
    rng = random.Random(11)
    p_values = []
    for sim in range(sims):
        flips = [rng.random() < 0.5 for _ in first]
        a = [y if f else x for x, y, f in zip(first, second, flips)]
        b = [x if f else y for x, y, f in zip(first, second, flips)]
        p_values.append(paired_approximate_randomization(metric, a, b, key, resamples=49, seed=sim).p_value)
    assert kstest(p_values, "uniform").pvalue > 0.001
    assert 0.0 <= sum(p <= 0.05 for p in p_values) / sims <= 0.15


def test_per_item_tests_match_scipy(two_systems):
    metric, a = stats_of("f1:parlai", two_systems[0])
    _, b = stats_of("f1:parlai", two_systems[1])
    values = lambda stats: [metric.item_values(s)["f1"] for s in stats]  # noqa: E731
    assert paired_t_test(metric, a, b, "f1").p_value == pytest.approx(ttest_rel(values(b), values(a)).pvalue)
    assert 0 < wilcoxon_signed_rank(metric, a, b, "f1").p_value <= 1
    assert paired_t_test(metric, a, a, "f1").p_value == 1.0
    corpus, stats = stats_of("bleu:sacrebleu", two_systems[0])
    with pytest.raises(ConfigError, match="corpus-level"):
        paired_t_test(corpus, stats, stats, "bleu-4")


def test_mcnemar_and_adjustments():
    a = [1] * 2 + [0] * 8 + [1] * 5 + [0] * 5  # 2 items only A gets right, 8 only B, 5 both, 5 neither
    b = [0] * 2 + [1] * 8 + [1] * 5 + [0] * 5
    result = mcnemar_exact(a, b)
    assert result.p_value == pytest.approx(2 * (1 + 10 + 45) / 1024) and result.delta == pytest.approx(0.3)
    assert mcnemar_exact(a, a).p_value == 1.0
    assert adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert adjust([0.01, 0.04, 0.03], "fdr_bh") == pytest.approx([0.03, 0.04, 0.04])
    with pytest.raises(ConfigError, match="0/1"):
        mcnemar_exact([0.5], [1])


def test_bad_input(two_systems):
    metric, stats = stats_of("f1:parlai", two_systems[0])
    with pytest.raises(ConfigError, match="same items"):
        paired_approximate_randomization(metric, stats, stats[:-1], "f1")
    with pytest.raises(ConfigError, match="count must be"):
        paired_bootstrap(metric, stats, stats, "f1", count="gt")


@pytest.mark.parametrize("test_type", ["ar", "bs"])
def test_paired_tests_agree_with_sacrebleu(convai2_valid, test_type):
    """Same seed, same random draws: sacreBLEU's --paired-ar / --paired-bs p-values for corpus BLEU are reproduced
    (count="sacrebleu"), up to a resample that float rounding puts on the other side of the threshold."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    systems = [list(open_records(str(shared_or_skip("data", "outputs", "sc_gpt", name)), "lines",
                                 dataset=str(convai2_valid)))[:300] for name in ("hyp-normal_ord", "hyp-dg")]
    refs = [r.reference for r in systems[0]]
    resamples = 200
    paired = PairedTest([("a", [r.response for r in systems[0]]), ("b", [r.response for r in systems[1]])],
                        {"BLEU": BLEU()}, [refs], test_type=test_type, n_samples=resamples)
    _, scores = paired()
    theirs = scores["BLEU"][1]
    metric, a = stats_of("bleu:sacrebleu", systems[0])
    _, b = stats_of("bleu:sacrebleu", systems[1])
    test = paired_approximate_randomization if test_type == "ar" else paired_bootstrap
    ours = test(metric, a, b, "bleu-4", resamples=resamples, seed=12345, count="sacrebleu")
    assert ours.score_b == pytest.approx(theirs.score, abs=1e-9)  # both on the x100 scale
    assert abs(ours.p_value - theirs.p_value) <= 1 / (resamples + 1) + 1e-12


def test_sign_flip_permutation_agrees_with_scipy(two_systems):
    """scipy's paired permutation test (sign flips of the differences) on the same per-item F1: equal p-values
    within Monte-Carlo error (different random streams, 20,000 resamples each; seed 2 gave 0.5479 vs 0.5500)."""
    import numpy as np
    from scipy.stats import permutation_test

    from pdg_eval.stats import paired_permutation

    metric, a = stats_of("f1:parlai", two_systems[0])
    _, b = stats_of("f1:parlai", two_systems[1])
    ours = paired_permutation(metric, a, b, "f1", resamples=20_000, seed=2)
    va = np.array([metric.item_values(s)["f1"] for s in a])
    vb = np.array([metric.item_values(s)["f1"] for s in b])
    theirs = permutation_test((vb, va), lambda x, y, axis=-1: np.mean(x - y, axis=axis), vectorized=True,
                              permutation_type="samples", n_resamples=20_000, alternative="two-sided",
                              random_state=np.random.default_rng(2))
    se = (2 * ours.p_value * (1 - ours.p_value) / 20_000) ** 0.5  # of the difference of two estimates
    assert abs(ours.p_value - theirs.pvalue) < 4 * se and ours.test == "paired_permutation"
    corpus, stats = stats_of("bleu:sacrebleu", two_systems[0])
    with pytest.raises(ConfigError, match="corpus-level"):
        paired_permutation(corpus, stats, stats, "bleu-4")
