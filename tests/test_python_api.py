"""The Python API (pdg_eval.score / pdg_eval.compare) and the Hugging Face `evaluate` module give the numbers and
signatures of the command line; the README's snippets run as written."""

from __future__ import annotations

import contextlib
import io
import json
import re
from importlib import resources
from pathlib import Path

import pytest

import pdg_eval
from pdg_eval.cli.main import main

EXAMPLE = str(resources.files("pdg_eval").joinpath("examples/persona_chat_example.jsonl"))
ROOT = Path(__file__).resolve().parent.parent


def cli_scores(tmp_path, *args: str) -> dict[str, tuple[float, str]]:
    """``metric:variant:key`` -> (printed value, signature) from ``pdg-eval score --json``."""
    out = tmp_path / "cli.json"
    assert main(["score", EXAMPLE, "-q", "--json", str(out), *args]) == 0
    doc = json.loads(out.read_text("utf-8"))
    return {f"{m['name']}:{m['variant']}:{key}": (value * factor, m["signature"]["string"])
            for m in doc["metrics"] for key, value in m["values"].items()
            for factor in [next(r["display_scale"] for r in doc["scores"] if r["signature"] == m["signature"]["string"])]}


def test_score_gives_the_command_line_values_and_signatures(tmp_path, capsys):
    expected = cli_scores(tmp_path, "--preset", "paa", "-m", "f1", "-m", "bleu:sacrebleu")
    capsys.readouterr()
    scores = pdg_eval.score(EXAMPLE, preset="paa", metrics=["f1", "bleu:sacrebleu"])
    assert {k: (v, scores.signatures[k]) for k, v in scores.values.items()} == expected
    table = scores.to_pandas()
    assert len(table) == len(expected) and set(table.columns) >= {"system", "metric", "variant", "key", "value",
                                                                  "signature"}
    items = scores.per_item()
    assert list(items["id"])[:2] == ["example-0-0", "example-0-1"] and "f1:parlai:f1" in items.columns
    assert "bleu:paa_precision:bleu-1" not in items.columns  # corpus-level: no per-item value
    records = [json.loads(line) for line in open(EXAMPLE, encoding="utf-8")]
    assert pdg_eval.score(records, preset="paa", metrics=["f1", "bleu:sacrebleu"]).values == scores.values


def test_compare_gives_the_command_line_table(tmp_path):
    records = [json.loads(line) for line in open(EXAMPLE, encoding="utf-8")]
    echo = tmp_path / "echo.jsonl"
    echo.write_text("".join(json.dumps(dict(r, response=r["context"][-1])) + "\n" for r in records), "utf-8")
    options = ["-m", "bleu:sacrebleu", "-m", "f1", "--resamples", "300", "--ci-resamples", "100"]
    out = tmp_path / "cmp.md"
    assert main(["compare", str(echo), EXAMPLE, "--name", "echo", "--name", "example", *options, "-f", "markdown",
                 "-o", str(out)]) == 0
    result = pdg_eval.compare_systems({"echo": str(echo), "example": EXAMPLE}, metrics=["bleu:sacrebleu", "f1"],
                              resamples=300, ci_resamples=100)
    assert result.table("markdown") == out.read_text("utf-8")
    frame = result.to_pandas()
    assert len(frame) == 2 * 5 and frame["baseline"].sum() == 5
    assert frame.loc[(frame.system == "example") & (frame.key == "f1"), "p_adjusted"].notna().all()


def readme_snippet(marker: str) -> str:
    text = (ROOT / "README.md").read_text("utf-8")
    match = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"README has no {marker}"
    return match.group(1)


def test_the_readme_api_snippet_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(readme_snippet("api-snippet"), "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert lines[0] == "50.88" and lines[1].startswith("bleu:paa_precision|tok:13a|")
    assert "| system |" in printed.getvalue()


def test_the_evaluate_module_loads_offline_and_matches_the_command_line(tmp_path, monkeypatch, capsys):
    evaluate = pytest.importorskip("evaluate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    records = [json.loads(line) for line in open(EXAMPLE, encoding="utf-8")]
    module = evaluate.load(pdg_eval.EVALUATE_MODULE, config_name="pdg")
    result = module.compute(predictions=[r["response"] for r in records], references=[[r["reference"]] for r in records],
                            personas=[r["persona"] for r in records], contexts=[r["context"] for r in records])
    expected = cli_scores(tmp_path, "--preset", "pdg")
    capsys.readouterr()
    signatures = result.pop("signatures")
    skipped = result.pop("skipped")
    # the example's candidates and NLLs are not evaluate inputs: Hits@1 and PPL are the only ones left out
    assert sorted(s.split(":")[0] for s in skipped) == ["hits@1", "ppl"]
    assert {k: (v, signatures[k]) for k, v in result.items()} == {k: v for k, v in expected.items()
                                                                  if not k.startswith(("hits@1", "ppl"))}
    combined = evaluate.combine([module, evaluate.load(pdg_eval.EVALUATE_MODULE, config_name="paa")])
    both = combined.compute(predictions=[r["response"] for r in records], references=[r["reference"] for r in records])
    assert any(k.endswith("bleu:paa_precision:bleu-1") for k in both) and any(k.endswith("f1:parlai:f1") for k in both)


def test_the_readme_evaluate_snippet_runs(monkeypatch):
    pytest.importorskip("evaluate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(readme_snippet("evaluate-snippet"), "README.md", "exec"), {})
    value, signature = printed.getvalue().split(" ", 1)
    assert float(value) > 0 and signature.startswith("f1:parlai|tok:parlai|")
