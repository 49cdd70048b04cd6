"""Power analysis: paired t-test sample sizes, MDE, corpus-level extrapolation, pairwise judgments."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest, norm
from statsmodels.stats.power import TTestPower

from pdg_eval.cli import main as cli_main
from pdg_eval.cli import power as power_cli
from pdg_eval.errors import ConfigError
from pdg_eval.power import (binomial_power, corpus_mde, corpus_sample_size, minimum_detectable_effect,
                            paired_sample_size, pairwise_judgments, pilot_from_differences, rejection_cutoff)


# --- paired t-test -------------------------------------------------------------------------------------------

def test_paired_sample_size_matches_statsmodels_and_exceeds_normal_approximation():
    sd, delta = 0.3, 0.05
    n = paired_sample_size(sd, delta)
    exact = TTestPower().solve_power(effect_size=delta / sd, alpha=0.05, power=0.8, alternative="two-sided")
    assert n == math.ceil(exact) == 285
    normal = ((norm.ppf(0.975) + norm.ppf(0.8)) * sd / delta) ** 2  # 282.6: the t-test needs slightly more
    assert normal < exact < normal + 3
    assert paired_sample_size(sd, -delta) == n  # two-sided: the sign does not matter


@pytest.mark.parametrize("sd,delta,alpha,power", [(0.3, 0.05, 0.05, 0.8), (0.12, 0.01, 0.01, 0.9),
                                                  (1.0, 0.5, 0.05, 0.8), (2.0, 0.1, 0.1, 0.95)])
def test_mde_round_trip(sd, delta, alpha, power):
    n = paired_sample_size(sd, delta, alpha, power)
    assert minimum_detectable_effect(sd, n, alpha, power) <= delta
    assert minimum_detectable_effect(sd, n - 1, alpha, power) > delta


def test_paired_sample_size_huge_effect_is_two_items():
    assert paired_sample_size(1.0, 100.0) == 2


def test_pilot_from_differences():
    n, mean, sd = pilot_from_differences([0.1, 0.2, 0.3, 0.6])
    assert n == 4 and mean == pytest.approx(0.3) and sd == pytest.approx(np.std([0.1, 0.2, 0.3, 0.6], ddof=1))


@pytest.mark.parametrize("call", [
    lambda: paired_sample_size(0.0, 0.1), lambda: paired_sample_size(-1.0, 0.1), lambda: paired_sample_size(1.0, 0.0),
    lambda: paired_sample_size(1.0, 0.1, alpha=0.0), lambda: paired_sample_size(1.0, 0.1, alpha=1.0),
    lambda: paired_sample_size(1.0, 0.1, power=1.0), lambda: paired_sample_size(1.0, 0.1, power=0.0),
    lambda: minimum_detectable_effect(1.0, 1), lambda: minimum_detectable_effect(0.0, 10),
    lambda: pilot_from_differences([0.1]), lambda: pilot_from_differences([0.2, 0.2, 0.2]),
    lambda: corpus_sample_size(0.0, 100, 0.01), lambda: corpus_sample_size(0.01, 0, 0.01),
    lambda: corpus_sample_size(0.01, 100, 0.0), lambda: corpus_mde(0.01, 100, 0),
    lambda: pairwise_judgments(0.5), lambda: pairwise_judgments(1.0), lambda: pairwise_judgments(0.0),
    lambda: pairwise_judgments(0.6, tie_rate=1.0), lambda: pairwise_judgments(0.6, tie_rate=-0.1),
    lambda: pairwise_judgments(0.6, alpha=1.5), lambda: pairwise_judgments(0.51, max_n=1000),
])
def test_bad_inputs_raise_config_error(call):
    with pytest.raises(ConfigError):
        call()


# --- corpus-level metrics ------------------------------------------------------------------------------------

def test_corpus_sample_size_and_mde():
    z = norm.ppf(0.975) + norm.ppf(0.8)
    assert corpus_sample_size(0.004, 1000, 0.01) == math.ceil(1000 * (0.004 * z / 0.01) ** 2) == 1256
    assert corpus_mde(0.004, 1000, 1000) == pytest.approx(0.004 * z)
    # se ∝ 1/sqrt(n): four times the items halve the MDE, and the MDE at the returned n is at most delta
    assert corpus_mde(0.004, 1000, 4000) == pytest.approx(corpus_mde(0.004, 1000, 1000) / 2)
    n = corpus_sample_size(0.004, 1000, 0.01)
    assert corpus_mde(0.004, 1000, n) <= 0.01 < corpus_mde(0.004, 1000, n - 1)


# --- pairwise human evaluation -------------------------------------------------------------------------------

def _brute_region(n: int, alpha: float) -> list[int]:
    return [k for k in range(n + 1) if binomtest(k, n, 0.5).pvalue <= alpha]


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.1])
def test_rejection_region_equals_binomtest(alpha):
    ns = [1, 2, 5, 6, 9, 10, 17, 30, 51, 100, 257]
    cutoffs = rejection_cutoff(np.array(ns), alpha)
    for n, c in zip(ns, cutoffs):
        assert _brute_region(n, alpha) == [k for k in range(n + 1) if k <= c or k >= n - c], n


def test_power_equals_pmf_sum_over_binomtest_region():
    for n in (10, 37, 120):
        region = _brute_region(n, 0.05)
        expected = sum(binom.pmf(k, n, 0.62) for k in region)
        assert binomial_power(n, 0.62, 0.05)[0] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_pairwise_judgments_known_value_and_stable_rule():
    res = pairwise_judgments(0.6)
    # brute force over binomtest: the exact power is saw-toothed, first reaching 0.8 at n = 199,
    # and dipping below it again up to n = 209; from 210 on it stays above for 20 more n
    def brute_power(n):
        return sum(binom.pmf(k, n, 0.6) for k in _brute_region(n, 0.05))
    assert brute_power(199) >= 0.8 and brute_power(209) < 0.8
    assert all(brute_power(n) >= 0.8 for n in range(210, 231))
    assert res["decisive"] == 210 and res["total"] == 210
    assert res["achieved_power"] == pytest.approx(brute_power(210)) and res["achieved_power"] >= 0.8
    # normal approximation of the sign test (about 194) is a little optimistic
    approx = ((norm.ppf(0.975) * 0.5 + norm.ppf(0.8) * math.sqrt(0.24)) / 0.1) ** 2
    assert approx < res["decisive"]


@pytest.mark.parametrize("win_rate,power", [(0.7, 0.8), (0.35, 0.9), (0.55, 0.8)])
def test_pairwise_judgments_reaches_target_and_is_symmetric(win_rate, power):
    res = pairwise_judgments(win_rate, power=power)
    n = res["decisive"]
    assert res["achieved_power"] >= power
    assert (binomial_power(np.arange(n, n + 21), win_rate) >= power).all()
    assert pairwise_judgments(1 - win_rate, power=power) == res


def test_pairwise_tie_rate_scales_total():
    base = pairwise_judgments(0.6)
    for tie in (0.2, 0.5, 0.333):
        res = pairwise_judgments(0.6, tie_rate=tie)
        assert res["decisive"] == base["decisive"]
        assert res["total"] == math.ceil(base["decisive"] / (1 - tie) - 1e-9)
    assert pairwise_judgments(0.6, tie_rate=0.2)["total"] == 263
    assert pairwise_judgments(0.6, tie_rate=0.5)["total"] == 420


# --- CLI -----------------------------------------------------------------------------------------------------

@pytest.fixture()
def main(monkeypatch):
    """``pdg_eval.cli.main.main``, with the power subcommand added if main.py does not register it yet."""
    build = cli_main.build_parser

    def build_with_power() -> argparse.ArgumentParser:
        parser = build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "power" not in sub.choices:
            power_cli.add_parser(sub)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build_with_power)
    return cli_main.main


def _write_csv(path, ids, values, column="bleu:nltk_sentence_avg:bleu-1"):
    lines = [f"id,{column},f1:default:f1"] + [f"{i},{'' if v is None else repr(v)},0.5" for i, v in zip(ids, values)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


COL = "bleu:nltk_sentence_avg:bleu-1"


def test_cli_per_item(tmp_path, capsys, main):
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, 40)
    b = np.clip(a + rng.normal(0.02, 0.1, 40), 0, 1)
    ids = [f"item-{i}" for i in range(40)]
    path_a = _write_csv(tmp_path / "a.csv", ids, [float(x) for x in a])
    # B lists the items in another order: pairing is by id
    path_b = _write_csv(tmp_path / "b.csv", ids[::-1], [float(x) for x in b[::-1]])
    out = tmp_path / "power.json"
    assert main(["power", "--per-item", path_a, path_b, "--column", COL, "--delta", "0.01", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    n, mean, sd = pilot_from_differences(b - a)
    doc = json.loads(out.read_text())
    assert doc["n_items"] == 40 and doc["mean_diff"] == pytest.approx(mean) and doc["sd_diff"] == pytest.approx(sd)
    assert doc["n_needed"] == paired_sample_size(sd, 0.01)
    assert doc["mde"] == pytest.approx(minimum_detectable_effect(sd, 40)) and doc["mde_n"] == 40
    assert f"items needed to detect delta 0.01: {doc['n_needed']}" in text and "at n=40" in text


def test_cli_per_item_skips_missing_values(tmp_path, capsys, main):
    ids = ["x", "y", "z", "w"]
    path_a = _write_csv(tmp_path / "a.csv", ids, [0.1, None, 0.3, 0.2])
    path_b = _write_csv(tmp_path / "b.csv", ids, [0.2, 0.5, 0.3, 0.5])
    assert main(["power", "--per-item", path_a, path_b, "--column", COL, "--delta", "0.1"]) == 0
    assert "items: 3 (1 skipped: no value)" in capsys.readouterr().out


def test_cli_id_mismatch(tmp_path, capsys, main):
    path_a = _write_csv(tmp_path / "a.csv", ["x", "y", "z"], [0.1, 0.2, 0.3])
    path_b = _write_csv(tmp_path / "b.csv", ["x", "y", "q"], [0.2, 0.2, 0.5])
    assert main(["power", "--per-item", path_a, path_b, "--column", COL, "--delta", "0.1"]) == 2
    err = capsys.readouterr().err
    assert f"{path_a}:4: id: id 'z' is not in {path_b}" in err


def test_cli_unknown_and_missing_column(tmp_path, capsys, main):
    path_a = _write_csv(tmp_path / "a.csv", ["x", "y"], [0.1, 0.2])
    path_b = _write_csv(tmp_path / "b.csv", ["x", "y"], [0.2, 0.4])
    assert main(["power", "--per-item", path_a, path_b, "--column", "bleu-1", "--delta", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "unknown column" in err and COL in err and "f1:default:f1" in err
    assert main(["power", "--per-item", path_a, path_b, "--delta", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "needs --column" in err and COL in err


def test_cli_sd_and_corpus_modes(tmp_path, capsys, main):
    assert main(["power", "--sd", "0.3", "--delta", "0.05", "--n", "100"]) == 0
    text = capsys.readouterr().out
    assert "items needed to detect delta 0.05: 285" in text
    assert f"minimum detectable effect at n=100: {minimum_detectable_effect(0.3, 100):.4g}" in text
    assert main(["power", "--se", "0.004", "--pilot-n", "1000", "--delta", "0.01"]) == 0
    assert "items needed to detect delta 0.01: 1256" in capsys.readouterr().out
    assert main(["power", "--se", "0.004", "--delta", "0.01"]) == 2
    assert "--pilot-n" in capsys.readouterr().err
    assert main(["power", "--sd", "0.3"]) == 2
    assert "--delta" in capsys.readouterr().err
    assert main(["power", "--sd", "0", "--delta", "0.05"]) == 2
    assert "positive" in capsys.readouterr().err


def test_cli_pairwise(tmp_path, capsys, main):
    out = tmp_path / "p.json"
    assert main(["power", "--win-rate", "0.6", "--tie-rate", "0.2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "decisive judgments needed: 210" in text and "including ties: 263" in text
    doc = json.loads(out.read_text())
    assert doc["decisive"] == 210 and doc["total"] == 263 and doc["achieved_power"] >= 0.8
    assert main(["power", "--win-rate", "0.5"]) == 2
    assert "not 0.5" in capsys.readouterr().err
