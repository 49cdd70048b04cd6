"""``pdg-eval annotate import``: an earlier import is kept unless --force, bad files end as one ``file:line: field:
problem`` line with exit code 2 and nothing written, and random bytes or JSON never end in a traceback (Hypothesis)."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdg_eval.annotate.importers import USR_ASPECTS, USR_REFERENCE_SYSTEM
from pdg_eval.cli.main import main

OUTPUTS = ["judgments_likert.csv", "records.jsonl", "import.json"]


def usr_item(k: int) -> dict[str, Any]:
    """One USR PersonaChat item: the reference and one system, rated by three annotators."""
    def response(model: str, text: str) -> dict[str, Any]:
        return {"response": text, "model": model} | {aspect: [high, low, high]
                                                     for aspect, (low, high) in USR_ASPECTS.items()}
    return {"context": f"hi there {k}\nhello , how are you ?", "fact": "your persona: i like tea .\n",
            "annotators": ["r1", "r2", "r3"],
            "responses": [response(USR_REFERENCE_SYSTEM, "i am fine ."), response("Seq2Seq", "i like tea .")]}


def run(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=1))
    return path


def test_an_earlier_import_is_replaced_only_with_force(tmp_path):
    source = write(tmp_path / "usr.json", [usr_item(0), usr_item(1)])
    out = tmp_path / "out"
    assert run("annotate", "import", "usr-personachat", str(source), "--out", str(out)) == (0, "")
    before = {name: (out / name).read_bytes() for name in OUTPUTS}
    assert b"usr-pc-01::Seq2Seq" in before["records.jsonl"]
    write(source, [usr_item(0)])
    code, err = run("annotate", "import", "usr-personachat", str(source), "--out", str(out))
    assert code == 2 and err == f"pdg-eval: error: {out / 'judgments_likert.csv'} exists: an earlier import is " \
                                "never overwritten (use another folder, or --force to replace it)\n"
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == before
    assert run("annotate", "import", "usr-personachat", str(source), "--out", str(out), "--force") == (0, "")
    assert b"usr-pc-01" not in (out / "records.jsonl").read_bytes()


def drop(path: tuple, key: str):
    def edit(data):
        target = data
        for step in path:
            target = target[step]
        del target[key]
    return edit


def put(path: tuple, key: str, value: Any):
    def edit(data):
        target = data
        for step in path:
            target = target[step]
        target[key] = value
    return edit


@pytest.mark.parametrize("edit, field, problem", [
    (drop((1, "responses", 1), "response"), "[1].responses[1].response", "missing"),
    (drop((1, "responses", 0), "model"), "[1].responses[0].model", "missing"),
    (drop((1,), "annotators"), "[1].annotators", "missing"),
    (put((1,), "responses", []), "[1].responses", "expected a non-empty list of responses, got []"),
    (put((1, "responses", 1), "Overall", [5, 6, 5]), "[1].responses[1].Overall", "score 6 outside 1-5"),
    (put((1, "responses", 1), "Natural", [1, True, 2]), "[1].responses[1].Natural", "score true outside 1-3"),
    (put((1, "responses", 1), "Engaging", [1, 2]), "[1].responses[1].Engaging",
     "expected 3 scores (one per annotator), got 2"),
    (put((1, "responses", 1), "model", USR_REFERENCE_SYSTEM), "[1].responses", "two responses with the same model"),
    (put((1,), "annotators", ["r1", "r1", "r2"]), "[1].annotators", "expected distinct non-empty names"),
    (put((1, "responses"), 1, "not an object"), "[1].responses[1]", "expected an object, got str"),
])
def test_a_bad_item_is_one_line_with_its_location(tmp_path, edit, field, problem):
    data = [usr_item(0), usr_item(1)]
    edit(data)
    source = write(tmp_path / "usr.json", data)
    line = [k for k, text in enumerate(source.read_text().splitlines(), 1) if text == " {"][1]  # the second item
    code, err = run("annotate", "import", "usr-personachat", str(source), "--out", str(tmp_path / "out"))
    assert (code, err) == (2, f"{source}:{line}: {field}: {problem}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe[1]", "1: not valid UTF-8 (byte 0xff at column 1)"),
    (b'[{"context": ', "1: malformed JSON: Expecting value (column 14)"),
    (b"{}", "expected a non-empty JSON list of items"),
    (b'[{"x": 1' + b"0" * 5000 + b"}]", "usr.json: integer of 5001 digits, over Python's 4300-digit limit"),
    (b'[{"x": "\\ud800"}]', "1: \\ud800 is a lone surrogate (half of a UTF-16 pair), not a character (column 9)"),
    (b"[" * 100 + b"]" * 100, "1: nested deeper than 64 arrays/objects (column 65)"),
])
def test_a_file_that_is_not_a_list_of_items(tmp_path, content, message):
    source = tmp_path / "usr.json"
    source.write_bytes(content)
    code, err = run("annotate", "import", "usr-personachat", str(source), "--out", str(tmp_path / "out"))
    assert code == 2 and err.startswith(f"{source}:") and message in err and err.count("\n") == 1


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@st.composite
def mutated_usr(draw) -> bytes:
    """A valid two-item file with one field deleted or replaced by random JSON."""
    data = [usr_item(0), usr_item(1)]
    parents = [data[1], *data[1]["responses"]]
    parent = draw(st.sampled_from(parents))
    key = draw(st.sampled_from(sorted(parent)))
    if draw(st.booleans()):
        del parent[key]
    else:
        parent[key] = draw(JSON)
    return json.dumps(data, indent=draw(st.sampled_from([None, 1]))).encode()


@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=64), JSON.map(lambda v: json.dumps(v).encode()), mutated_usr()))
def test_import_of_random_input_exits_0_or_2_and_writes_all_or_nothing(content):
    with tempfile.TemporaryDirectory() as folder:
        source, out = Path(folder) / "usr.json", Path(folder) / "out"
        source.write_bytes(content)
        code, err = run("annotate", "import", "usr-personachat", str(source), "--out", str(out))  # never raises
        assert code in (0, 2) and "Traceback" not in err
        if code == 2:
            assert err.count("\n") == 1 and not out.exists()
        else:
            assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)


# -- grade-convai2 ----------------------------------------------------------------------------------------------------

CONVAI2 = ("1 your persona: i like tea.\n2 partner's persona: i have a dog.\n"
           "3 hi there\thello , how are you ?\n4 i am fine . you ?\tgood , i drink tea .\n")
MATCHED, UNMATCHED = "hi there|||hello , how are you ?", "no such|||context here"
GRADE_CONTEXTS = {"bert_ranker": [MATCHED, MATCHED], "dialogGPT": [MATCHED, UNMATCHED],
                  "transformer_generator": [UNMATCHED, MATCHED], "transformer_ranker": [UNMATCHED, MATCHED]}


def grade_items() -> list[dict[str, Any]]:
    """GRADE's judgement items: one of another dataset, then 2 per ConvAI2 system (the first one with 9 raters)."""
    items = [{"ID": 0, "Dataset": "dailydialog_EVAL", "DialogModel": "x", "Context": "a|||b", "Response": "c",
              "HumanScores": "[1, 2]"}]
    for system, contexts in GRADE_CONTEXTS.items():
        for k, context in enumerate(contexts):
            scores = [1, 2, 3, 4, 5, 5, 4, 3, 2, 1][k == 0 and system == "bert_ranker":]
            items.append({"ID": len(items), "Dataset": "convai2", "DialogModel": system, "Context": context,
                          "Response": f"{system} reply {k} .", "HumanScores": json.dumps(scores)})
    return items


def grade_folder(root: Path, items: list[dict[str, Any]] | None = None) -> tuple[Path, Path]:
    """A GRADE evaluation folder (eval_data/convai2/<system>/human_{ctx,hyp,ref}.txt, human_judgement.json) and a
    ConvAI2 both-persona file."""
    folder = root / "grade"
    for system, contexts in GRADE_CONTEXTS.items():
        base = folder / "eval_data" / "convai2" / system
        base.mkdir(parents=True)
        (base / "human_ctx.txt").write_text("".join(f"{c}\n" for c in contexts))
        (base / "human_hyp.txt").write_text("".join(f"{system} reply {k} .\n" for k in range(len(contexts))))
        (base / "human_ref.txt").write_text("".join(f"ref {k} .\n" for k in range(len(contexts))))
    write(folder / "human_judgement.json", grade_items() if items is None else items)
    dataset = root / "valid_both_original_no_cands.txt"
    dataset.write_text(CONVAI2)
    return folder, dataset


def import_grade(folder: Path, dataset: Path | None, out: Path) -> tuple[int, str]:
    return run("annotate", "import", "grade-convai2", str(folder), "--out", str(out),
               *(["--dataset", str(dataset)] if dataset else []))


def test_grade_import_attaches_the_next_speakers_persona_and_counts_matches(tmp_path):
    folder, dataset = grade_folder(tmp_path)
    assert import_grade(folder, dataset, tmp_path / "out") == (0, "")
    records = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "records.jsonl").read_text().splitlines())}
    assert len(records) == 8
    first = records["grade-c2-000::bert_ranker"]
    assert first["persona"] == ["i have a dog."]  # the partner answers "hello , how are you ?"
    assert first["context"] == ["hi there", "hello , how are you ?"] and first["reference"] == "ref 0 ."
    assert records["grade-c2-000.2::bert_ranker"]["response"] == "bert_ranker reply 1 ."  # judged twice: 2nd item
    assert records["grade-c2-001::dialogGPT"]["persona"] == []  # unmatched: kept without persona
    info = json.loads((tmp_path / "out" / "import.json").read_text())
    assert info["source"]["persona_contexts"] == {"contexts": 2, "matched_once": 1, "unmatched": 1, "ambiguous": 0}
    assert info["aspects"] == ["score"] and info["scales"] == {"score": [1, 2, 3, 4, 5]}
    table = (tmp_path / "out" / "judgments_likert.csv").read_text().splitlines()
    assert len(table) == 1 + 8 * 10 - 1  # the first bert_ranker item has 9 raters
    assert table[1] == "grade-c2-000,rater01,score,bert_ranker,2,,False"


def grade_edit(k: int, key: str, value: Any):
    def edit(items):
        items[k][key] = value
    return edit


@pytest.mark.parametrize("edit, field, problem", [
    (grade_edit(3, "HumanScores", "[1, 6]"), "[3].HumanScores", "score 6 outside 1-5"),
    (grade_edit(3, "HumanScores", "[]"), "[3].HumanScores", "expected a non-empty list of scores, got []"),
    (grade_edit(3, "HumanScores", "[1,"), "[3].HumanScores", "malformed JSON: Expecting value (column 4)"),
    (grade_edit(3, "HumanScores", [1, 2]), "[3].HumanScores", "expected a JSON list of scores as a string, got [1, 2]"),
    (grade_edit(3, "DialogModel", "seq2seq"), "[3].DialogModel",
     "expected one of bert_ranker, dialogGPT, transformer_generator, transformer_ranker, got 'seq2seq'"),
])
def test_a_bad_grade_item_is_one_line_with_its_location(tmp_path, edit, field, problem):
    items = grade_items()
    edit(items)
    folder, dataset = grade_folder(tmp_path, items)
    source = folder / "human_judgement.json"
    line = [k for k, text in enumerate(source.read_text().splitlines(), 1) if text == " {"][3]
    assert import_grade(folder, dataset, tmp_path / "out") == (2, f"{source}:{line}: {field}: {problem}\n")
    assert not (tmp_path / "out").exists()


def test_grade_files_that_disagree_or_are_missing(tmp_path):
    folder, dataset = grade_folder(tmp_path)
    source, base = folder / "human_judgement.json", folder / "eval_data" / "convai2" / "dialogGPT"
    line = [k for k, text in enumerate(source.read_text().splitlines(), 1) if text == " {"][4]  # dialogGPT's 2nd
    (base / "human_hyp.txt").write_text("dialogGPT reply 0 .\nsomething else\n")
    assert import_grade(folder, dataset, tmp_path / "out") == (
        2, f"{source}:{line}: [4].Response: differs from line 2 of {base / 'human_hyp.txt'}\n")
    (base / "human_hyp.txt").write_text("one line\n")
    assert import_grade(folder, dataset, tmp_path / "out") == (
        2, f"{base / 'human_hyp.txt'}: expected 2 lines, got 1\n")
    (base / "human_hyp.txt").unlink()
    assert import_grade(folder, dataset, tmp_path / "out") == (
        2, f"{base / 'human_hyp.txt'}: missing (expected GRADE's eval_data/convai2/<system>/ layout)\n")
    assert import_grade(folder, None, tmp_path / "out") == (
        2, "pdg-eval: error: grade-convai2 needs --dataset: the ConvAI2 both-persona file its contexts come from "
           "(valid_both_original_no_cands.txt)\n")
    assert not (tmp_path / "out").exists()


@st.composite
def mutated_grade(draw) -> bytes:
    """GRADE's judgement items with one field of one ConvAI2 item deleted or replaced by random JSON."""
    items = grade_items()
    item = items[draw(st.integers(1, len(items) - 1))]
    key = draw(st.sampled_from(sorted(item)))
    if draw(st.booleans()):
        del item[key]
    else:
        item[key] = draw(JSON | st.lists(st.integers(-1, 7), max_size=12).map(json.dumps))
    return json.dumps(items, indent=draw(st.sampled_from([None, 1]))).encode()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=64), JSON.map(lambda v: json.dumps(v).encode()), mutated_grade()))
def test_grade_import_of_random_judgements_exits_0_or_2_and_writes_all_or_nothing(content):
    with tempfile.TemporaryDirectory() as folder:
        grade, dataset = grade_folder(Path(folder))
        (grade / "human_judgement.json").write_bytes(content)
        code, err = import_grade(grade, dataset, Path(folder) / "out")  # never raises
        assert code in (0, 2) and "Traceback" not in err
        if code == 2:
            assert err.count("\n") == 1 and not (Path(folder) / "out").exists()
        else:
            assert sorted(p.name for p in (Path(folder) / "out").iterdir()) == sorted(OUTPUTS)
