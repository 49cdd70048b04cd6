"""The analysis: IDL's and MORPHEUS' scoring rules on worked examples, Bradley–Terry against a direct MLE, position
bias, Likert summaries, the report files, and the USR PersonaChat import with its agreement and correlations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.stats import spearmanr
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from pdg_eval.annotate.analysis import (AnalysisOptions, ItemResampler, analyse, fit_bradley_terry, morpheus_scores,
                                        with_ranking_scores)
from pdg_eval.annotate.correlation import floor_warnings, human_scores, metric_human_correlation, metric_item_values
from pdg_eval.annotate.importers import import_usr_personachat, write_imported
from pdg_eval.annotate.report import write_report
from pdg_eval.cli.main import main
from pdg_eval.errors import ConfigError
from pdg_eval.metrics.base import build_metric
from pdg_eval.records import Record
from pdg_eval.scoring import requested_metrics

from .conftest import shared_or_skip


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided binomial p at 1/2, by hand: the probability of outcomes no likelier than k."""
    pmf = [math.comb(n, i) / 2 ** n for i in range(n + 1)]
    return min(1.0, sum(p for p in pmf if p <= pmf[k] * (1 + 1e-7)))


def idl_frame() -> pd.DataFrame:
    """5 annotators x 4 items, IDL vs ICL, shown in alternating A/B order.
    Persona: 13 wins, 3 ties, 4 losses for IDL; Fluency: 6 / 4 / 10."""
    outcomes = {"Persona": ["win"] * 13 + ["tie"] * 3 + ["lose"] * 4,
                "Fluency": ["win"] * 6 + ["tie"] * 4 + ["lose"] * 10}
    rows = []
    for aspect, labels in outcomes.items():
        for k, outcome in enumerate(labels):
            item, annotator = f"d{k % 4}", f"ann{k // 4}"
            left, right = ("IDL", "ICL") if k % 2 == 0 else ("ICL", "IDL")
            choice = "tie" if outcome == "tie" else (
                "left" if (outcome == "win") == (left == "IDL") else "right")
            rows.append({"item": item, "annotator": annotator, "aspect": aspect, "left": left, "right": right,
                         "choice": choice})
    return pd.DataFrame(rows)


def test_idl_win_rates_and_binomial_test_on_a_worked_example():
    a = analyse(idl_frame(), "pairwise", "idl", AnalysisOptions(systems=["IDL", "ICL"], resamples=200))
    table = a.tables["win_tie_lose"].set_index("aspect")
    persona, fluency = table.loc["Persona"], table.loc["Fluency"]
    assert (persona["first"], persona["second"]) == ("IDL", "ICL")  # oriented: IDL's wins, whatever the A/B order
    assert (persona["win"], persona["tie"], persona["lose"], persona["judgments"]) == (13, 3, 4, 20)
    assert persona["win_rate"] == pytest.approx(13 / 20)  # IDL's "winning rate": ties in the denominator
    assert persona["p_binomial"] == pytest.approx(binomial_two_sided(13, 17), rel=1e-9)
    assert fluency["win_rate"] == pytest.approx(0.30) and fluency["lose_rate"] == pytest.approx(0.50)
    assert fluency["p_binomial"] == pytest.approx(binomial_two_sided(6, 16), rel=1e-9)
    low, high = persona["win_rate_ci"]
    assert low <= 0.65 <= high
    # Cohen's kappa as IDL: the mean over annotator pairs (here 5 annotators -> 10 pairs)
    cohen = next(s for s in a.agreement["Persona"] if s.statistic == "cohen_kappa")
    assert cohen.options["pairs"] == 10 and a.levels["Persona"] == "nominal"


def test_swapping_display_order_changes_nothing_but_the_position_audit():
    frame = idl_frame()
    swapped = frame.copy()
    swapped["left"], swapped["right"] = frame["right"], frame["left"]
    swapped["choice"] = frame["choice"].map({"left": "right", "right": "left", "tie": "tie"})
    options = AnalysisOptions(systems=["IDL", "ICL"], resamples=100)
    a, b = analyse(frame, "pairwise", "x", options), analyse(swapped, "pairwise", "x", options)
    pd.testing.assert_frame_equal(a.tables["win_tie_lose"], b.tables["win_tie_lose"])
    assert [s.value for s in a.agreement["Persona"]] == [s.value for s in b.agreement["Persona"]]
    left_a = a.tables["position_bias"].set_index("aspect").loc["(all)", "left_share"]
    left_b = b.tables["position_bias"].set_index("aspect").loc["(all)", "left_share"]
    assert left_a + left_b == pytest.approx(1.0)


def test_position_bias_flags_an_annotator_who_always_picks_a():
    rows = [{"item": f"i{k}", "annotator": name, "aspect": "Persona", "left": ("x", "y")[k % 2],
             "right": ("y", "x")[k % 2], "choice": "left" if name == "lazy" else ("left", "right")[k % 2]}
            for k in range(30) for name in ("lazy", "careful")]
    a = analyse(pd.DataFrame(rows), "pairwise", "bias", AnalysisOptions(resamples=0))
    per = a.tables["position_bias_annotators"].set_index("annotator")
    assert per.loc["lazy", "left_share"] == 1.0 and per.loc["lazy", "p_binomial"] == pytest.approx(2 / 2 ** 30)
    assert per.loc["careful", "left_share"] == 0.5 and per.loc["careful", "p_binomial"] == 1.0


def test_morpheus_normalisation_worked_example():
    # 6 responses, the ground truth ranked 3rd: the two ranked above it get 1, the rest (n - r) / (n - 1)
    assert morpheus_scores([3, 1, 2, 4, 5, 6], gold_rank=3) == [0.6, 1.0, 1.0, 0.4, 0.2, 0.0]
    assert morpheus_scores([1, 2, 3], gold_rank=None) == [1.0, 0.5, 0.0]
    with pytest.raises(ConfigError, match="each of the ranks"):
        morpheus_scores([1, 1, 3])
    systems = ["Ground truth", "MORPHEUS", "CLV", "MSP", "DHAP", "PersonaPKT"]
    rankings = {("d1", "a"): [3, 1, 2, 4, 5, 6], ("d1", "b"): [1, 2, 3, 4, 6, 5], ("d2", "a"): [2, 3, 1, 6, 4, 5]}
    rows = [{"item": item, "annotator": ann, "aspect": "Consistency", "system": s, "rank": r, "position": p}
            for (item, ann), ranks in rankings.items() for p, (s, r) in enumerate(zip(systems, ranks))]
    frame = pd.DataFrame(rows)
    scored = with_ranking_scores(frame, "Ground truth")
    # MORPHEUS (d1,a): 1 (above gold); (d1,b): (6-2)/5 = 0.8; (d2,a): (6-3)/5 = 0.6 -> mean 0.8
    assert scored[scored["system"] == "MORPHEUS"]["score"].mean() == pytest.approx(0.8)
    # CLV: 1 (above gold) ; 0.6 ; 1 (above gold) -> 0.8667
    assert scored[scored["system"] == "CLV"]["score"].mean() == pytest.approx((1 + 0.6 + 1) / 3)
    a = analyse(frame, "ranking", "m", AnalysisOptions(gold="Ground truth", resamples=50))
    table = a.tables["ranking"].set_index("system")
    assert table.loc["MORPHEUS", "mean"] == pytest.approx(0.8) and table.loc["MORPHEUS", "mean_rank"] == pytest.approx(2)
    assert table.loc["Ground truth", "mean"] == pytest.approx((0.6 + 1.0 + 0.8) / 3)
    # Fleiss' kappa with ranks as categories (MORPHEUS): units = (item, system), rank values as the categories
    fleiss = next(s for s in a.agreement["Consistency"] if s.statistic == "fleiss_kappa")
    d1 = np.array([rankings[("d1", "a")], rankings[("d1", "b")]])
    table_counts = np.array([[np.sum(d1[:, j] == c) for c in range(1, 7)] for j in range(6)])
    assert fleiss.value == pytest.approx(sm_fleiss_kappa(table_counts), abs=1e-12)  # d2 has one rater: left out
    assert fleiss.options["units_left_out"] == 6
    assert "bradley_terry" in a.tables and a.levels["Consistency"] == "ordinal"


def test_bradley_terry_equals_a_direct_maximum_likelihood_fit():
    wins = np.array([[0, 7, 9, 4], [3, 0, 6, 5], [1, 4, 0, 2], [6, 5, 8, 0]], dtype=float)

    def nll(theta):
        diff = theta[:, None] - theta[None, :]
        return float(np.sum(wins * np.logaddexp(0, -diff)))

    mle = minimize(nll, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    assert np.allclose(fit_bradley_terry(wins, alpha=0.0), mle - mle.mean(), atol=1e-5)


def test_bradley_terry_orders_systems_from_pairwise_judgments():
    quality = {"a": 2.0, "b": 1.0, "c": 0.0}
    rng = np.random.default_rng(0)
    rows = []
    for k in range(60):
        x, y = [("a", "b"), ("b", "c"), ("a", "c")][k % 3]
        p = 1 / (1 + math.exp(quality[y] - quality[x]))
        rows.append({"item": f"i{k}", "annotator": "r1", "aspect": "Overall", "left": x, "right": y,
                     "choice": "left" if rng.random() < p else "right"})
    a = analyse(pd.DataFrame(rows), "pairwise", "bt", AnalysisOptions(resamples=200))
    bt = a.tables["bradley_terry"].set_index("system")
    assert bt.loc["a", "strength"] > bt.loc["b", "strength"] > bt.loc["c", "strength"]
    assert bt["strength"].sum() == pytest.approx(0.0, abs=1e-9)
    low, high = bt.loc["a", "ci"]
    assert low <= bt.loc["a", "strength"] <= high


def test_likert_means_tests_and_position_audit():
    rows = []
    for k in range(20):
        for ann in ("r1", "r2"):
            for p, (system, value) in enumerate([("good", 4 + (k // 2) % 2), ("bad", 2 + (k % 3 == 0))][:: 1 if k % 2 else -1]):
                rows.append({"item": f"i{k}", "annotator": ann, "aspect": "Fluency", "system": system,
                             "value": value, "position": p})
    a = analyse(pd.DataFrame(rows), "likert", "l", AnalysisOptions(resamples=200, domains={"Fluency": [1, 2, 3, 4, 5]}))
    table = a.tables["likert"].set_index("system")
    assert table.loc["good", "mean"] == pytest.approx(4.5) and table.loc["good", "median"] == 4.5
    test = a.tables["tests"].iloc[0]
    assert test["p_wilcoxon"] < 0.001 and test["p_holm"] == test["p_wilcoxon"]  # one pair: Holm changes nothing
    assert a.tables["position_bias"].set_index("aspect").loc["Fluency", "p_kruskal"] > 0.05
    alpha = next(s for s in a.agreement["Fluency"] if s.statistic == "krippendorff_alpha")
    assert alpha.value == pytest.approx(1.0)  # the two annotators agree exactly


def test_item_resampler_ratio_matches_a_loop():
    resampler = ItemResampler(["a", "b", "c"], resamples=5, seed=3)
    num, den = resampler.per_item(["a", "b", "b", "c"], [1, 0, 1, 1]), resampler.per_item(["a", "b", "b", "c"], [1, 1, 1, 1])
    got = resampler.ratio(num, den)
    for r, counts in enumerate(resampler.counts):
        assert got[r] == pytest.approx((counts @ num) / (counts @ den))
    assert got[0] == pytest.approx(3 / 4)


# -- USR PersonaChat ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def usr():
    return import_usr_personachat(shared_or_skip("data", "human_judgements", "usr_personachat", "pc_usr_data.json"))


def test_usr_import_counts_and_values(usr):
    frame = usr.frame
    assert len(frame) == 60 * 5 * 6 * 3 and len(usr.records) == 300
    assert frame["item"].nunique() == 60 and frame["system"].nunique() == 5 and frame["annotator"].nunique() == 4
    assert sorted(frame["annotator"].unique()) == ["maxine", "mckenna", "shikib", "yulan"]
    raw = json.loads(Path(usr.source["path"]).read_text())
    first = raw[0]["responses"][1]  # KV-MemNN on the first context
    got = frame[(frame["item"] == "usr-pc-00") & (frame["system"] == first["model"]) & (frame["aspect"] == "Overall")]
    assert list(got["value"]) == first["Overall"] and list(got["annotator"]) == raw[0]["annotators"]
    record = next(r for r in usr.records if r.id == "usr-pc-00::KV-MemNN")
    assert record.persona[0] == "i also have a dog walking business." and record.context[-1].startswith("really would")
    assert record.reference == "ha ha i'm so shy"


def test_usr_agreement_matches_the_libraries_on_the_raw_file(usr):
    raw = json.loads(Path(usr.source["path"]).read_text())
    annotators = sorted({a for item in raw for a in item["annotators"]})
    units = [(i, r["model"]) for i, item in enumerate(raw) for r in item["responses"]]
    matrix = np.full((len(annotators), len(units)), np.nan)
    for u, (i, model) in enumerate(units):
        response = next(r for r in raw[i]["responses"] if r["model"] == model)
        for name, value in zip(raw[i]["annotators"], response["Overall"]):
            matrix[annotators.index(name), u] = value
    a = analyse(usr.frame, "likert", "usr", AnalysisOptions(aspects=usr.aspects, levels=usr.levels,
                                                            domains=usr.scales, resamples=0))
    stats = {s.statistic: s.value for s in a.agreement["Overall"]}
    assert a.levels["Overall"] == "ordinal" and a.levels["Uses Knowledge"] == "nominal"
    assert stats["krippendorff_alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5]),
        abs=1e-12)
    table = np.array([[np.sum(matrix[:, u] == c) for c in range(1, 6)] for u in range(len(units))])
    assert stats["fleiss_kappa"] == pytest.approx(sm_fleiss_kappa(table), abs=1e-12)


def test_usr_metric_correlation_equals_scipy(usr):
    human = human_scores(usr.frame, "likert", aspects=usr.aspects)
    assert list(human.columns) == usr.aspects and len(human) == 300
    metrics, signatures, left_out = metric_item_values(usr.records, metrics=["p-f1:msp"])
    assert signatures and "p-f1:msp" in signatures[0] and left_out == []
    table = metric_human_correlation(human, metrics, resamples=200, seed=1, exclude_systems=usr.exclude_from_correlation)
    row = table[(table["metric"] == "p-f1:msp:p-f1") & (table["aspect"] == "Uses Knowledge")].iloc[0]
    joined = human.join(metrics).drop(index="Original Ground Truth", level="system")
    assert row["n"] == 240 and row["items"] == 60
    assert row["spearman"] == pytest.approx(spearmanr(joined["p-f1:msp:p-f1"], joined["Uses Knowledge"]).statistic)
    low, high = row["spearman_ci"]
    assert low < row["spearman"] < high and row["spearman"] > 0.3  # persona overlap tracks "Uses Knowledge"


def test_usr_import_and_report_through_the_cli(usr, tmp_path):
    source = usr.source["path"]
    assert main(["annotate", "import", "usr-personachat", source, "--out", str(tmp_path / "usr")]) == 0
    info = json.loads((tmp_path / "usr" / "import.json").read_text())
    assert info["exclude_from_correlation"] == ["Original Ground Truth"] and info["scales"]["Overall"] == [1, 2, 3, 4, 5]
    args = ["annotate", "report", str(tmp_path / "usr"), "--resamples", "100"]
    assert main(args + ["--out", str(tmp_path / "r1")]) == 0
    assert main(args + ["--out", str(tmp_path / "r2")]) == 0
    text = (tmp_path / "r1" / "report.md").read_text()
    for heading in ("## Likert ratings", "## Agreement", "## Metric vs human correlation", "## Signatures"):
        assert heading in text
    assert "| Overall | ordinal | quadratic |" in text and "Left out of the correlation: Original Ground Truth" in text
    for name in ("report.md", "report.json", "likert_means.png", "correlation.png"):
        assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r2" / name).read_bytes(), name
    summary = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert summary["counts"]["judgments"] == 5400 and summary["levels"]["Understandable"] == "nominal"


def test_usr_report_with_a_constant_metric_says_undefined(usr, tmp_path):
    assert main(["annotate", "import", "usr-personachat", usr.source["path"], "--out", str(tmp_path / "usr")]) == 0
    assert main(["annotate", "report", str(tmp_path / "usr"), "--preset", "idl", "--resamples", "20",
                 "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| p-cover:idl_released:p-cover |"))
    assert row == "| p-cover:idl_released:p-cover |" + " undefined |" * 6  # P-Cover (IDL) is 0 on every USR reply
    assert ("- Undefined correlation (every aspect): `p-cover:idl_released:p-cover`: the metric is constant "
            "(0 on all 240 responses).") in text
    assert "- Left out of the table: `c-score:idl_pairwise`: a corpus-level score (no per-item values)." in text
    summary = json.loads((tmp_path / "r" / "report.json").read_text())
    cover = [r for r in summary["correlation"] if r["metric"] == "p-cover:idl_released:p-cover"]
    assert len(cover) == 6 and all(r["spearman"] is None and r["undefined"].startswith("the metric is constant")
                                   for r in cover)


def test_metrics_without_per_item_values_are_named_with_the_reason(usr):
    records = [r for r in usr.records if r.meta["item"] in ("usr-pc-00", "usr-pc-01")]
    metrics, _, left_out = metric_item_values(records, "pdg")
    assert "p-cover:morpheus: a corpus-level score (no per-item values)" in left_out
    assert "distinct:corpus: a corpus-level score (no per-item values)" in left_out
    assert "hits@1:scores: records have no 'candidate_scores'" in left_out
    assert not any(c.startswith("p-cover:") for c in metrics.columns) and "p-f1:msp:p-f1" in metrics.columns


def test_report_lists_left_out_and_undefined_correlations(tmp_path):
    rows = [{"item": f"i{k}", "annotator": a, "aspect": aspect, "system": s, "value": (k + len(s)) % 5 + 1,
             "position": p} for k in range(8) for a in ("r1", "r2") for aspect in ("Fluency", "Flat")
            for p, s in enumerate(("x", "yy"))]
    frame = pd.DataFrame(rows)
    frame.loc[frame["aspect"] == "Flat", "value"] = 3  # every response rated 3
    a = analyse(frame, "likert", "l", AnalysisOptions(resamples=20))
    human = human_scores(frame, "likert")
    metrics = pd.DataFrame({"m:v:varies": np.arange(16.0), "m:v:zero": np.zeros(16)}, index=human.index)
    a.correlation = metric_human_correlation(human, metrics, resamples=20, seed=1)
    a.correlation_left_out = ["distinct:corpus: a corpus-level score (no per-item values)"]
    text = write_report(a, tmp_path).read_text()
    assert "| m:v:zero | undefined | undefined |" in text
    assert "- Undefined correlation (every aspect): `m:v:zero`: the metric is constant (0 on all 16 responses)." in text
    assert "- Undefined correlation (Flat): `m:v:varies`: the human Flat scores are constant." in text
    assert "- Left out of the table: `distinct:corpus`: a corpus-level score (no per-item values)." in text
    assert json.loads((tmp_path / "report.json").read_text())["correlation_left_out"] == a.correlation_left_out


def test_report_refuses_bad_levels_and_sources(usr, tmp_path, capsys):
    write_imported(usr, tmp_path / "usr")
    assert main(["annotate", "report", str(tmp_path / "usr"), "--out", str(tmp_path / "r"), "--level",
                 "Overall=likert", "--no-correlation", "--resamples", "0"]) == 2
    assert "level of 'Overall' must be one of" in capsys.readouterr().err
    assert main(["annotate", "report", str(tmp_path / "usr"), "--out", str(tmp_path / "r"), "--level",
                 "Charm=ordinal", "--no-correlation", "--resamples", "0"]) == 2
    assert "unknown aspect" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["annotate", "report", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    assert "expected a study folder" in capsys.readouterr().err
    assert not (tmp_path / "r" / "report.md").exists()


def test_report_files_render_every_section(tmp_path):
    a = analyse(idl_frame(), "pairwise", "idl", AnalysisOptions(systems=["IDL", "ICL"], resamples=50))
    path = write_report(a, tmp_path)
    text = path.read_text()
    assert "## Win / Tie / Lose (IDL §4.4.2)" in text and "| IDL | ICL | Persona | 4 | 20 | 65.0 |" in text
    assert (tmp_path / "win_tie_lose.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## Position bias audit" in text and "Krippendorff's α" in text


def test_report_files_are_written_together_or_not_at_all(tmp_path, monkeypatch):
    import pdg_eval.annotate.report as report

    a = analyse(idl_frame(), "pairwise", "idl", AnalysisOptions(systems=["IDL", "ICL"], resamples=50))

    def failing_summary(analysis):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "summary", failing_summary)
    with pytest.raises(OSError):
        write_report(a, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no PNG, no report, no temporary file


def test_report_on_a_study_folder_scores_its_own_prediction_files(tmp_path):
    from pdg_eval.annotate.store import Store, create_store
    from pdg_eval.annotate.study import build_study

    from .test_annotate_study import answer_all, write_study

    path = write_study(tmp_path, template="morpheus_ranking", items={"n": 8, "seed": 1},
                       annotators={"names": ["a", "b"], "per_item": 2})
    create_store(build_study(path), tmp_path / "study")
    store = Store(tmp_path / "study")
    quality = {"Ground truth": 1, "demo": 2, "generic": 3}  # everyone ranks the ground truth first

    def rank(store, screen, aspect):
        if screen.unit.is_check:  # follow the planted instruction: the check response first
            target = next(i for i, s in enumerate(screen.responses_shown) if "Attention check" in s)
            order = [target] + [i for i in range(len(screen.shown)) if i != target]
            return [order.index(i) + 1 for i in range(len(screen.shown))]
        return [quality[s] for s in screen.systems_shown]

    with store.connect() as db:
        for (annotator_id,) in db.execute("SELECT id FROM annotators").fetchall():
            answer_all(store, annotator_id, rank)
    out = tmp_path / "report"
    assert main(["annotate", "report", str(tmp_path / "study"), "--out", str(out), "--resamples", "50"]) == 0
    text = (out / "report.md").read_text()
    assert "| a | 4 / 4 |" in text and "| b | 4 / 4 |" in text  # attention checks passed (4 aspects each)
    assert "| Ground truth | Readability | 8 | 16 | 1.000 |" in text  # always first: score 1
    assert "| generic | Readability | 8 | 16 | 0.000 |" in text
    assert "## Bradley–Terry strengths" in text and "Left out of the correlation: Ground truth." in text
    summary = json.loads((out / "report.json").read_text())
    fleiss = next(s for s in summary["agreement"]["Readability"] if s["statistic"] == "fleiss_kappa")
    assert fleiss["value"] == pytest.approx(1.0)  # identical rankings
    assert {row["metric"] for row in summary["correlation"]} >= {"f1:parlai:f1", "p-f1:msp:p-f1"}


def test_report_passes_metrics_and_models_through_to_requested_metrics(usr, tmp_path, monkeypatch):
    import pdg_eval.annotate.correlation as correlation

    calls = []

    def spy(preset, extra=(), models=None):
        calls.append((preset, list(extra), models))
        return requested_metrics(preset, extra, models)

    monkeypatch.setattr(correlation, "requested_metrics", spy)
    write_imported(usr, tmp_path / "usr")
    assert main(["annotate", "report", str(tmp_path / "usr"), "--out", str(tmp_path / "r"), "--resamples", "20",
                 "-m", "p-f1:msp,stopwords=sklearn", "--nli-model", "NLI", "--cohcon-model", "CC"]) == 0
    assert calls == [(None, ["p-f1:msp,stopwords=sklearn"], {"nli": "NLI", "cohcon": "CC"})] * 5  # once per system
    summary = json.loads((tmp_path / "r" / "report.json").read_text())
    assert {r["metric"] for r in summary["correlation"]} == {"p-f1:msp:p-f1"}
    assert "stopwords:sklearn-318-sha256:4e22be0ad71a" in (tmp_path / "r" / "report.md").read_text()


def test_same_metric_with_other_options_gets_its_options_in_the_column(usr):
    records = [r for r in usr.records if r.meta["item"] in ("usr-pc-00", "usr-pc-01")]
    metrics, _, _ = metric_item_values(records, metrics=["p-f1:msp", "p-f1:msp,stopwords=sklearn"])
    assert list(metrics.columns) == [
        "p-f1:msp,history_source=persona,stopwords=none:p-f1",
        "p-f1:msp,history_source=persona,stopwords=sklearn-318-sha256:4e22be0ad71a:p-f1"]


def test_sklearn_stop_words_are_left_out_of_persona_f1():
    record = Record(id="a", response="the tea is hot", references=["x"], persona=["i like the green tea ."])
    plain, stop = (build_metric(spec) for spec in ("p-f1:msp", "p-f1:msp,stopwords=sklearn"))
    assert plain.item_stats(record) == pytest.approx(2 * (2 / 4) * (2 / 6) / (2 / 4 + 2 / 6))  # the, tea
    # "i", "the", "is" are stop words: response {tea, hot}, persona {like, green, tea, .}
    assert stop.item_stats(record) == pytest.approx(2 * (1 / 2) * (1 / 4) / (1 / 2 + 1 / 4))
    assert stop.signature_options()["stopwords"] == "sklearn-318-sha256:4e22be0ad71a"


def test_mostly_nltk_floor_values_get_a_warning():
    metrics = pd.DataFrame({"bleu:x:bleu-4": [1e-155, 2e-232, 0.3, 0.0], "bleu:x:bleu-1": [1e-155, 0.2, 0.3, 0.0]})
    assert floor_warnings(metrics) == [
        "Warning: 50% of `bleu:x:bleu-4`'s values are NLTK's near-zero floors (0 < value <= 1e-100, a zero n-gram "
        "count without smoothing): its rank correlation mostly orders those floors."]


def test_paired_spearman_difference_of_two_options_of_one_metric():
    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr

    from pdg_eval.annotate.correlation import paired_spearman_differences, same_metric_pairs

    rng = np.random.default_rng(0)
    index = pd.MultiIndex.from_tuples([(f"i{k}", s) for k in range(60) for s in ("x", "y")], names=["item", "system"])
    truth = rng.normal(size=len(index))
    human = pd.DataFrame({"overall": truth}, index=index)
    metrics = pd.DataFrame({"p-f1:msp:p-f1": truth + rng.normal(scale=2.0, size=len(index)),
                            "p-f1:msp,stopwords=sklearn:p-f1": truth + rng.normal(scale=0.3, size=len(index)),
                            "bleu:nltk:bleu": rng.normal(size=len(index))}, index=index)
    assert same_metric_pairs(list(metrics.columns)) == [("p-f1:msp:p-f1", "p-f1:msp,stopwords=sklearn:p-f1")]
    table = paired_spearman_differences(human, metrics, resamples=400, seed=1)
    row = table.iloc[0]
    expected = (spearmanr(metrics.iloc[:, 1], truth).statistic - spearmanr(metrics.iloc[:, 0], truth).statistic)
    assert len(table) == 1 and row.delta_spearman == pytest.approx(expected)
    assert 0 < row.delta_ci[0] < row.delta_spearman < row.delta_ci[1] and row.p_bootstrap < 0.01
    same = pd.DataFrame({"p-f1:a:p-f1": metrics.iloc[:, 0], "p-f1:b:p-f1": metrics.iloc[:, 0]}, index=index)
    tie = paired_spearman_differences(human, same, resamples=200, seed=1).iloc[0]
    assert tie.delta_spearman == 0 and tie.delta_ci == (0.0, 0.0) and tie.p_bootstrap == 1.0
