"""Bad input: one line ``file:line: field: problem`` on stderr, exit code 2, no output file written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdg_eval.cli.main import main

GOOD = {"id": "a", "persona": ["i like dogs ."], "context": ["hi"], "response": "i like dogs", "reference": "me too"}


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    with open(path, "wb") as handle:
        for line in lines:
            handle.write((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n")
    return path


def rec(**overrides) -> str:
    obj = {**GOOD, **overrides}
    return json.dumps({k: v for k, v in obj.items() if v is not ...}, ensure_ascii=False)


def run_cli(tmp_path: Path, capsys, src: Path, *extra: str) -> tuple[int, str, str]:
    out_json, out_csv = tmp_path / "out.json", tmp_path / "items.csv"
    code = main(["score", str(src), "-q", "--json", str(out_json), "--per-item", str(out_csv), *extra])
    captured = capsys.readouterr()
    if code != 0:
        assert not out_json.exists() and not out_csv.exists(), "nothing may be written on error"
        assert not list(tmp_path.glob(".*.tmp")), "no temporary file may be left behind"
    return code, captured.out, captured.err


CASES = [
    ("malformed_json", [rec(id="1"), '{"id": "2", "response": "x" "reference": "y"}'], ":2: record: malformed JSON"),
    ("missing_reference", [rec(id="1"), rec(id="2", reference=...)], ":2: reference: missing required field"),
    ("missing_response", [rec(id="1", response=...)], ":1: response: missing required field"),
    ("persona_not_list", [rec(id="1", persona="i like dogs")], ":1: persona: 'i like dogs' is not of type 'array'"),
    ("persona_item_not_string", [rec(id="1", persona=["ok", 3])], ":1: persona.1: 3 is not of type 'string'"),
    ("reference_wrong_type", [rec(id="1", reference=5)], ":1: reference: must be a string or a non-empty list"),
    ("candidate_count", [rec(id="1", candidates=["a", "me too"], candidate_scores=[0.1, 0.2, 0.3])],
     ":1: candidate_scores: 3 scores for 2 candidates"),
    ("candidates_without_gold", [rec(id="1", candidates=["a", "b"], candidate_scores=[0.1, 0.2])],
     ":1: candidates: no candidate equals the reference"),
    ("nan_score", [rec(id="1", nll=[1.0, float("nan")])], ":1: nll: contains NaN or infinity"),
    ("duplicate_id", [rec(id="1"), rec(id="2"), rec(id="1")], ":3: id: duplicate id '1' (first on line 1)"),
    ("non_utf8", [rec(id="1").encode(), b'{"id": "2", "response": "caf\xe9", "reference": "x"}'],
     ":2: record: not valid UTF-8 (byte 0xe9 at column 29)"),
    ("mixed_languages", [rec(id="1", language="en"), rec(id="2", response="我喜欢狗", reference="我也是", language="zh")],
     ":2: language: 'zh' differs from 'en' (line 1)"),
    ("huge_line", [rec(id="1"), rec(id="2", response="la " * (10 * 2 ** 20 // 3))], ":2: record: line is 10.0 MiB"),
    ("optional_field_missing_later", [rec(id="1", nll=[1.0]), rec(id="2")], None),
]


@pytest.mark.parametrize("name,lines,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_one_line_exit_2(tmp_path, capsys, name, lines, message):
    src = write_lines(tmp_path / "preds.jsonl", lines)
    extra = ["--metric", "ppl"] if name == "optional_field_missing_later" else []
    code, out, err = run_cli(tmp_path, capsys, src, *extra)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    expected = message or ":2: nll: missing; required by ppl:token_micro"
    assert err.startswith(str(src) + expected), err


def test_missing_optional_field_in_a_preset_drops_the_metric_not_the_run(tmp_path, capsys):
    src = write_lines(tmp_path / "preds.jsonl", [rec(id="1"), rec(id="2")])
    code, out, _ = run_cli(tmp_path, capsys, src, "--preset", "parlai")
    assert code == 0
    assert "skipped: hits@1:scores: records have no 'candidate_scores'" in out


def test_bom_is_accepted(tmp_path, capsys):
    src = write_lines(tmp_path / "preds.jsonl", [b"\xef\xbb\xbf" + rec(id="1").encode(), rec(id="2")])
    code, out, err = run_cli(tmp_path, capsys, src, "--metric", "f1")
    assert code == 0, err
    assert json.loads((tmp_path / "out.json").read_text())["n_items"] == 2


def test_empty_response_is_scored_by_rule(tmp_path, capsys):
    src = write_lines(tmp_path / "preds.jsonl", [rec(id="1"), rec(id="2", response=""), rec(id="3", response="  ")])
    code, out, err = run_cli(tmp_path, capsys, src, "--metric", "bleu", "--metric", "rouge", "--metric", "distinct")
    assert code == 0
    assert "2 empty response(s)" in err and ":2" in err and ":3" in err
    doc = json.loads((tmp_path / "out.json").read_text())
    bleu_items = doc["items"]["stats"][next(k for k in doc["items"]["stats"] if k.startswith("bleu"))]
    assert bleu_items[1][0] == 0  # no hypothesis tokens
    rows = (tmp_path / "items.csv").read_text().splitlines()
    assert rows[2].split(",")[1:] == ["0.0"] * (len(rows[0].split(",")) - 1)


def test_chinese_under_a_non_segmenting_tokenizer_warns(tmp_path, capsys):
    src = write_lines(tmp_path / "preds.jsonl", [rec(id="1", response="我喜欢狗 and cats", reference="我也是")])
    code, _, err = run_cli(tmp_path, capsys, src, "--metric", "bleu")
    assert code == 0
    assert ":1: response: contains CJK characters" in err
    code, _, err = run_cli(tmp_path, capsys, src, "--metric", "bleu", "--tokenizer", "char")
    assert code == 0 and "CJK" not in err


def test_existing_output_is_untouched_on_error(tmp_path, capsys):
    out_json = tmp_path / "out.json"
    out_json.write_text("previous")
    src = write_lines(tmp_path / "preds.jsonl", [rec(id="1"), "{broken"])
    assert main(["score", str(src), "-q", "--json", str(out_json)]) == 2
    assert out_json.read_text() == "previous"


@pytest.mark.parametrize("args,message", [
    (["--metric", "bleu:nope"], "unknown variant 'nope' of bleu"),
    (["--metric", "blue"], "unknown metric 'blue'"),
    (["--metric", "bleu,smooth"], "bad option 'smooth'"),
    (["--metric", "bleu,colour=red"], "unknown option(s) colour for bleu"),
    (["--metric", "p-cover:msp"], "p-cover:msp needs a global idf table"),
])
def test_bad_metric_specs(tmp_path, capsys, args, message):
    src = write_lines(tmp_path / "preds.jsonl", [rec(id="1")])
    code, _, err = run_cli(tmp_path, capsys, src, *args)
    assert code == 2 and message in err


def test_missing_input_file(tmp_path, capsys):
    code = main(["score", str(tmp_path / "nope.jsonl"), "-q"])
    assert code == 2
    assert "nope.jsonl" in capsys.readouterr().err
