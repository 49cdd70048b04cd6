"""`compare --plot` (forest plot of the differences to the baseline) and `score --plot` (per-item distributions):
the same input and seed give the same PNG bytes; the intervals drawn are the paired bootstrap intervals of the
differences; what cannot be drawn is an error before anything is written."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import pytest

from pdg_eval.cli.main import main
from pdg_eval.compare import SystemRun, compare, difference_intervals
from pdg_eval.metrics.base import build_metric
from pdg_eval.records import read_jsonl
from pdg_eval.scoring import MetricSpec, score_records
from pdg_eval.stats import paired_bootstrap

EXAMPLE = str(resources.files("pdg_eval").joinpath("examples/persona_chat_example.jsonl"))


@pytest.fixture()
def echo(tmp_path):
    path = tmp_path / "echo.jsonl"
    with open(EXAMPLE, encoding="utf-8") as handle:
        path.write_text("".join(json.dumps(dict(r, response=r["context"][-1])) + "\n"
                                for r in map(json.loads, handle)), "utf-8")
    return str(path)


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_forest_plot_is_deterministic(tmp_path, echo, capsys):
    args = [echo, EXAMPLE, "-m", "bleu:sacrebleu", "-m", "f1", "-m", "distinct:corpus", "--resamples", "200",
            "--ci-resamples", "100", "-q", "-f", "json"]
    assert main(["compare", *args, "--plot", str(tmp_path / "a.png")]) == 0
    assert main(["compare", *args, "--plot", str(tmp_path / "b.png")]) == 0
    capsys.readouterr()
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and sha(tmp_path / "a.png") == sha(tmp_path / "b.png")
    assert main(["compare", *args[:-5], "--ci-resamples", "101", "-q", "--plot", str(tmp_path / "c.png")]) == 0
    assert sha(tmp_path / "c.png") != sha(tmp_path / "a.png")  # other resamples, other intervals


def test_the_intervals_are_paired_bootstrap_intervals_of_the_difference(echo):
    specs = [MetricSpec("bleu:sacrebleu"), MetricSpec("distinct:corpus")]
    runs = [SystemRun.from_score_run(name, score_records(read_jsonl(path), specs))
            for name, path in (("echo", echo), ("example", EXAMPLE))]
    cmp = compare(runs, resamples=100, ci_resamples=50)
    intervals = difference_intervals(runs, cmp, resamples=300, seed=7)
    metric = build_metric("bleu:sacrebleu")
    stats = [[metric.item_stats(r) for r in read_jsonl(path)] for path in (echo, EXAMPLE)]
    expected = paired_bootstrap(metric, stats[0], stats[1], "bleu-2", resamples=300, seed=7)
    j = next(k for k, c in enumerate(cmp.columns) if c.label == "bleu:sacrebleu:bleu-2")
    assert intervals[("example", j)] == (expected.delta, *expected.ci)
    distinct = next(k for k, c in enumerate(cmp.columns) if c.label.startswith("distinct"))
    assert "corpus Distinct falls below the estimate" in intervals[("example", distinct)]


def test_score_plot_is_deterministic_and_refused_without_sentence_level_values(tmp_path, capsys):
    for name in ("a.png", "b.png"):
        assert main(["score", EXAMPLE, "-q", "--preset", "paa", "-m", "f1", "--plot", str(tmp_path / name)]) == 0
    assert sha(tmp_path / "a.png") == sha(tmp_path / "b.png")
    capsys.readouterr()
    out = tmp_path / "corpus.png"
    assert main(["score", EXAMPLE, "-q", "-m", "bleu:sacrebleu", "--plot", str(out), "--json",
                 str(tmp_path / "s.json")]) == 2
    assert "--plot: no sentence-level metric" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "s.json").exists()  # nothing half-written
