"""``pdg-eval compare``: values, intervals, paired tests vs a baseline, Holm, tie groups, all output formats, inputs as
records or score JSONs, and bad input — on real ConvAI2 outputs (first 150 turns of three DialoGPT runs + gold)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from statsmodels.stats.multitest import multipletests

from pdg_eval.cli.main import main
from pdg_eval.metrics.base import build_metric
from pdg_eval.readers import open_records
from pdg_eval.stats import paired_tests
from tests.conftest import shared_or_skip

N = 150
SYSTEMS = ("hyp-normal_ord", "hyp-dg", "hyp-multitask")
METRICS = ["-m", "f1:parlai", "-m", "bleu:sacrebleu", "-m", "distinct:corpus"]


@pytest.fixture(scope="module")
def records(convai2_valid):
    out = {}
    for name in SYSTEMS:
        path = shared_or_skip("data", "outputs", "sc_gpt", name)
        out[name] = list(open_records(str(path), "lines", dataset=str(convai2_valid)))[:N]
    out["gold"] = [dataclasses.replace(r, response=r.reference) for r in out[SYSTEMS[0]]]
    return out


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def files(records, tmp_path_factory):
    folder = tmp_path_factory.mktemp("systems")
    return {name: write_jsonl(folder / f"{name}.jsonl", recs) for name, recs in records.items()}


def run_compare(capsys, args):
    code = main(["compare", *args, "--quiet"])
    out = capsys.readouterr()
    return code, out.out, out.err


def cells_of(doc):
    return {(c["system"], c["spec"].split(",")[0], c["key"]): c for c in doc["cells"]}


def test_json_values_tests_and_holm(files, records, capsys):
    paths = [files[n] for n in SYSTEMS]
    code, out, _ = run_compare(capsys, [*paths, *METRICS, "--resamples", "300", "--ci-resamples", "200", "-f", "json"])
    assert code == 0
    doc = json.loads(out)
    cells = cells_of(doc)
    assert doc["baseline"] == "hyp-normal_ord" and doc["n_common"] == N
    metric = build_metric("bleu:sacrebleu")
    a, b, c = (metric.items_stats(records[n]) for n in SYSTEMS)
    direct_b = paired_tests(metric, a, b, "ar", 300, 12345)["bleu-2"]
    direct_c = paired_tests(metric, a, c, "ar", 300, 12345)["bleu-2"]
    got_b, got_c = cells[("hyp-dg", "bleu:sacrebleu", "bleu-2")], cells[("hyp-multitask", "bleu:sacrebleu", "bleu-2")]
    assert got_b["value"] == pytest.approx(direct_b.score_b) and got_b["p"] == direct_b.p_value
    assert got_c["p"] == direct_c.p_value
    holm = multipletests([direct_b.p_value, direct_c.p_value], method="holm")[1]
    assert [got_b["p_adjusted"], got_c["p_adjusted"]] == pytest.approx(list(holm))
    base = cells[("hyp-normal_ord", "bleu:sacrebleu", "bleu-2")]
    assert base["p"] is None and base["ci"][0] <= base["value"] <= base["ci"][1]
    # corpus Distinct: AR-tested, but no bootstrap CI (resampling repeats responses)
    dist = cells[("hyp-dg", "distinct:corpus", "dist-2")]
    assert dist["p"] is not None and dist["ci"] is None
    assert "repeats responses" in next(c["no_ci"] for c in doc["columns"] if c["key"] == "dist-2")


def test_gold_is_far_better_and_identical_systems_tie(files, tmp_path, capsys):
    twin = tmp_path / "twin.jsonl"
    twin.write_text(open(files["hyp-dg"], encoding="utf-8").read(), encoding="utf-8")
    code, out, _ = run_compare(capsys, [files["hyp-dg"], str(twin), files["gold"], "-m", "f1:parlai",
                                        "--name", "dg", "--name", "twin", "--name", "gold", "--resamples", "200",
                                        "-f", "json"])
    cells = cells_of(json.loads(out))
    assert cells[("twin", "f1:parlai", "f1")]["p"] == 1.0 and not cells[("twin", "f1:parlai", "f1")]["significant"]
    assert cells[("gold", "f1:parlai", "f1")]["p_adjusted"] < 0.01
    assert cells[("gold", "f1:parlai", "f1")]["group"] == 1
    assert cells[("dg", "f1:parlai", "f1")]["group"] == cells[("twin", "f1:parlai", "f1")]["group"] == 2
    # a ceiling is shown but not ranked: then dg and twin share group 1
    code, out, _ = run_compare(capsys, [files["hyp-dg"], str(twin), files["gold"], "-m", "f1:parlai", "--name", "dg",
                                        "--name", "twin", "--name", "gold", "--ceiling", "gold", "--resamples", "200",
                                        "-f", "json"])
    cells = cells_of(json.loads(out))
    assert cells[("gold", "f1:parlai", "f1")]["group"] is None and cells[("dg", "f1:parlai", "f1")]["group"] == 1


def test_score_json_inputs_give_the_same_table(files, tmp_path, capsys):
    jsons = []
    for name in SYSTEMS:
        out = tmp_path / f"{name}.json"
        assert main(["score", files[name], *METRICS, "--json", str(out), "--quiet"]) == 0
        jsons.append(str(out))
    capsys.readouterr()
    args = [*METRICS, "--resamples", "100", "--ci-resamples", "50", "-f", "markdown"]
    _, from_records, _ = run_compare(capsys, [files[n] for n in SYSTEMS] + args)
    _, from_json, _ = run_compare(capsys, jsons + args)
    assert from_records == from_json
    assert "**" in from_records and "<u>" in from_records and "[test] test:ar|resamples:100|seed:12345" in from_records


def test_formats_and_determinism(files, capsys):
    paths = [files[n] for n in SYSTEMS]
    outputs = {}
    for fmt in ("text", "markdown", "latex", "json"):
        _, first, _ = run_compare(capsys, [*paths, "-m", "f1:parlai", "--resamples", "100", "-f", fmt])
        _, second, _ = run_compare(capsys, [*paths, "-m", "f1:parlai", "--resamples", "100", "-f", fmt])
        assert first == second  # same input and seed: identical output
        outputs[fmt] = first
    assert outputs["latex"].count(r"\toprule") == 1 and r"\textbf{" in outputs["latex"]
    assert "hyp-normal\\_ord" in outputs["latex"]
    assert "adj. p" in outputs["text"] and "hyp-normal_ord *" in outputs["text"]


def test_t_test_and_untested_corpus_metric(files, capsys):
    paths = [files[n] for n in SYSTEMS]
    code, out, _ = run_compare(capsys, [*paths, "-m", "f1:parlai", "-m", "bleu:sacrebleu", "--test", "t", "-f", "json"])
    doc = json.loads(out)
    assert code == 0 and doc["test_signature"].startswith("test:t|adjust:holm")
    assert all(c["untested"] and "per-item" in c["untested"] for c in doc["columns"] if c["spec"].startswith("bleu"))
    code, out, _ = run_compare(capsys, [*paths, "-m", "self-bleu:texygen", "--resamples", "50", "-f", "json"])
    assert "--loop-resamples" in json.loads(out)["columns"][0]["untested"]


def test_items_in_common_only(files, records, tmp_path, capsys):
    short = write_jsonl(tmp_path / "short.jsonl", records["hyp-dg"][:100])
    code, out, _ = run_compare(capsys, [files["hyp-normal_ord"], short, "-m", "f1:parlai", "--resamples", "50",
                                        "-f", "json"])
    doc = json.loads(out)
    assert doc["n_common"] == 100 and doc["n_items"] == {"hyp-normal_ord": N, "short": 100}


@pytest.mark.parametrize("extra,message", [
    ([], "at least two systems"),
    (["SECOND", "--baseline", "nobody"], "baseline 'nobody'"),
    (["SECOND", "--name", "x"], "--name value"),
])
def test_bad_input(files, capsys, extra, message):
    args = [files["hyp-dg"], *[files["gold"] if e == "SECOND" else e for e in extra], "-m", "f1:parlai"]
    code, _, err = run_compare(capsys, args)
    assert code == 2 and message in err


def test_no_common_items(files, records, tmp_path, capsys):
    renamed = write_jsonl(tmp_path / "other.jsonl", [dataclasses.replace(r, id=f"x{r.id}") for r in records["hyp-dg"]])
    code, _, err = run_compare(capsys, [files["hyp-dg"], renamed, "-m", "f1:parlai"])
    assert code == 2 and "share no item ids" in err


def test_a_metric_some_files_cannot_give_is_left_out_with_a_note(files, records, tmp_path, capsys):
    """Perplexity needs each record's gold NLL: a file without them is compared on the other metrics, and the note
    names who had it; stored score JSONs that differ are still refused."""
    with_nll = write_jsonl(tmp_path / "nll.jsonl", [dataclasses.replace(r, nll=[1.0, 2.0]) for r in records["hyp-dg"]])
    args = [with_nll, files["hyp-normal_ord"], "--preset", "paa", "--resamples", "50"]
    code, out, err = run_compare(capsys, [*args, "-f", "json"])
    assert code == 0 and "skipped: ppl:paa: only nll (the other systems' files have no field for it)" in err
    assert {c["spec"].split(",")[0] for c in json.loads(out)["columns"]} == {"bleu:paa_precision", "distinct:paa"}
    stored = []
    for path, name in ((with_nll, "a"), (files["hyp-normal_ord"], "b")):
        assert main(["score", path, "-q", "--preset", "paa", "--json", str(tmp_path / f"{name}.json")]) == 0
        stored.append(str(tmp_path / f"{name}.json"))
    capsys.readouterr()
    code, _, err = run_compare(capsys, stored)
    assert code == 2 and "is missing for b" in err
