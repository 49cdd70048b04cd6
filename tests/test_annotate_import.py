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
