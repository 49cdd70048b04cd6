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
    ("nan_score", [rec(id="1", nll=[1.0, float("nan")])], ":1: record: NaN is not valid JSON (use null or a number)"),
    ("duplicate_id", [rec(id="1"), rec(id="2"), rec(id="1")], ":3: id: duplicate id '1' (first on line 1)"),
    ("non_utf8", [rec(id="1").encode(), b'{"id": "2", "response": "caf\xe9", "reference": "x"}'],
     ":2: record: not valid UTF-8 (byte 0xe9 at column 29)"),
    ("mixed_languages", [rec(id="1", language="en"), rec(id="2", response="我喜欢狗", reference="我也是", language="zh")],
     ":2: language: 'zh' differs from 'en' (line 1)"),
    ("huge_line", [rec(id="1"), rec(id="2", response="la " * (10 * 2 ** 20 // 3))], ":2: record: line is 10.0 MiB"),
    ("5000_digit_id", [rec(id="1"), '{"id": %s, "response": "a", "reference": "b"}' % ("9" * 5000)],
     ":2: record: integer of 5000 digits, over Python's 4300-digit limit (write it as a string)"),
    ("400_digit_nll", ['{"id": "1", "response": "a", "reference": "b", "nll": [%s]}' % ("9" * 400)],
     ":1: nll: contains NaN or infinity"),
    ("deep_meta", [rec(id="1"), '{"id": "2", "response": "a", "reference": "b", "meta": %s}'
                   % ("[" * 200_000 + "]" * 200_000)], ":2: record: nested deeper than 64 arrays/objects (column 119)"),
    ("lone_surrogate_response", ['{"id": "1", "response": "a \\ud800", "reference": "b"}'],
     ":1: record: \\ud800 is a lone surrogate (half of a UTF-16 pair), not a character (column 28)"),
    ("lone_surrogate_id", ['{"id": "\\udfff", "response": "a", "reference": "b"}'],  # scored, then broke the CSV
     ":1: record: \\udfff is a lone surrogate"),
    ("nan_literal_in_meta", [rec(id="1", meta={"x": 1}).replace('"x": 1', '"x": NaN')],
     ":1: record: NaN is not valid JSON (use null or a number)"),
    ("overflowing_float", ['{"id": "1", "response": "a", "reference": "b", "nll": [1e400]}'],
     ":1: record: number 1e400 is beyond the range of a double"),
    ("duplicate_key", ['{"id": "1", "response": "a", "reference": "b", "response": "c"}'],
     ":1: record: duplicate key 'response' in one object"),
    ("bom_mid_file", [rec(id="1"), b"\xef\xbb\xbf" + rec(id="2").encode()],
     ":2: record: byte-order mark (U+FEFF) at the start of a line after the first (concatenated files?)"),
    ("cr_only_line_ends", [(rec(id="1") + "\r" + rec(id="2")).encode()],
     f":1: record: carriage return inside the line (column {len(rec(id='1')) + 1}): convert CR line ends to LF"),
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
    (["--metric", "bleu,colour=red"], "bleu:nltk_sentence_avg: option colour= does not apply to this variant"),
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


def _doc_edit(edit):
    """A text edit of a score JSON that decodes it, applies ``edit`` to the document and encodes it again."""
    def apply(text: str) -> str:
        doc = json.loads(text)
        edit(doc)
        return json.dumps(doc)
    return apply


F1_SIG = "f1:parlai|tok:parlai|scale:x100|version:"
SCORE_JSON_CASES = [
    ("truncated", lambda t: t[:60], ":1: malformed JSON: "),
    ("not_utf8", lambda t: t.encode()[:40] + b"\xff" + t.encode()[40:], ":1: not valid UTF-8 (byte 0xff at column 41)"),
    ("lone_surrogate", lambda t: t.replace('"ids":["1"', '"ids":["\\ud800"'), ":1: \\ud800 is a lone surrogate"),
    ("deep", lambda t: t[:-2] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n", ":1: nested deeper than 64"),
    ("5000_digit_int", lambda t: t[:-2] + ', "x": ' + "7" * 5000 + "}\n", ": integer of 5000 digits"),
    ("duplicate_key", lambda t: t.replace('{"pdg_eval_version"', '{"items": 1, "pdg_eval_version"'),
     ": duplicate key 'items' in one object"),
    ("a_list", lambda t: '["pdg_eval_version"]', ": score: ['pdg_eval_version'] is not of type 'object'"),
    ("no_items", _doc_edit(lambda d: d.pop("items")), ": items: no per-item statistics"),
    ("unknown_metric", _doc_edit(lambda d: d["metrics"][0].update(spec="nope")),
     ": metrics.0.spec: unknown metric 'nope'"),
    ("metric_twice", _doc_edit(lambda d: d["metrics"].append(d["metrics"][0])),
     ": metrics.1.spec: f1:parlai,tok=parlai is listed twice"),
    ("spec_not_text", _doc_edit(lambda d: d["metrics"][0].update(spec=5)),
     ": metrics.0.spec: 5 is not of type 'string'"),
    ("integer_ids", _doc_edit(lambda d: d["items"].update(ids=["1", 2])), ": items.ids.1: 2 is not of type 'string'"),
    ("duplicate_ids", _doc_edit(lambda d: d["items"].update(ids=["1", "1"])),
     ": items.ids.1: duplicate id '1' (first at items.ids.0)"),
    ("ids_short", _doc_edit(lambda d: d["items"]["ids"].pop()), ": items.stats: 2 values for 1 ids (" + F1_SIG),
    ("fingerprints_short", _doc_edit(lambda d: d["items"]["fingerprints"].update(references=["x"])),
     ": items.fingerprints: 1 values for 2 ids (references)"),
    ("signature_unknown", _doc_edit(lambda d: d["metrics"][0]["signature"].update(string="x")),
     ": items.stats: no statistics for f1:parlai,tok=parlai (signature x)"),
    ("value_missing", _doc_edit(lambda d: d["metrics"][0].update(values={})), ": metrics.0.values: no value for f1"),
    ("value_text", _doc_edit(lambda d: d["metrics"][0]["values"].update(f1="high")),
     ": metrics.0.values.f1: 'high' is not of type 'number', 'null'"),
]


@pytest.fixture()
def score_json(tmp_path: Path, capsys) -> Path:
    """A score JSON of two records (ids "1" and "2") under f1:parlai."""
    src = write_lines(tmp_path / "preds.jsonl", [rec(id="1"), rec(id="2", response="me too")])
    assert main(["score", str(src), "-q", "-m", "f1:parlai", "--json", str(tmp_path / "a.json")]) == 0
    capsys.readouterr()
    return tmp_path / "a.json"


@pytest.mark.parametrize("name,edit,message", SCORE_JSON_CASES, ids=[c[0] for c in SCORE_JSON_CASES])
def test_bad_score_json_in_compare(tmp_path, capsys, score_json, name, edit, message):
    edited = edit(score_json.read_text("utf-8"))
    bad = tmp_path / "b.json"
    bad.write_bytes(edited if isinstance(edited, bytes) else edited.encode("utf-8"))
    out = tmp_path / "table.txt"
    code = main(["compare", str(score_json), str(bad), "-q", "--resamples", "100", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and err.startswith(str(bad) + message), err


def test_score_json_nan_values_are_read(tmp_path, capsys, score_json):
    """The writer emits NaN for an undefined value; compare reads it (strict JSON is for input records)."""
    other = tmp_path / "b.json"
    other.write_text(score_json.read_text("utf-8").replace('"values":{"f1":', '"values":{"f1":NaN,"x":'))
    code = main(["compare", str(score_json), str(other), "-q", "--resamples", "100", "--ci-resamples", "0"])
    assert code == 0, capsys.readouterr().err


def test_binary_json_file_is_read_as_records(tmp_path, capsys, score_json):
    other = tmp_path / "b.json"
    other.write_bytes(b"\xff\xfe{\x00}\x00")
    assert main(["compare", str(score_json), str(other), "-q", "-m", "f1:parlai"]) == 2
    assert capsys.readouterr().err == f"{other}:1: record: not valid UTF-8 (byte 0xff at column 1)\n"
