"""Property-based fuzzing of ``pdg-eval score`` and ``pdg-eval compare``, run in-process.

Whatever the input file holds, the command ends with exit code 0 or 2 (a one-line error), no exception escapes
:func:`pdg_eval.cli.main.main`, and after exit 2 no output file exists. Examples are bounded (a few seconds per test).
"""

from __future__ import annotations

import json
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdg_eval.cli.main import main

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: ConvAI2 in ParlAI text: turns 0-0, 0-1 and 1-0 (for --dataset)
TINY = ("1 your persona: i like cats.\n2 your persona: i am tall.\n3 hi there\thello !\t\tno|hello !\n"
        "4 how are you ?\tfine .\t\tbad|fine .\n1 your persona: i swim.\n2 hey\tyo\t\tx|yo\n")
GOOD = [{"id": "0-0", "response": "hello there", "reference": "hello !"},
        {"id": "0-1", "response": "fine thanks", "reference": "fine ."},
        {"id": "1-0", "response": "yo yo", "reference": "yo"}]

#: Any character, lone surrogates included (Hypothesis leaves them out by default; JSON can escape them)
characters = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))
texts = st.text(characters, max_size=12)
#: JSON that json.dumps cannot write, as placeholders that :func:`dump` replaces with the raw text
RAW = {"@@5000-digit-int@@": "9" * 5000, "@@deep@@": "[" * 5000 + "]" * 5000, "@@1e999@@": "1e999",
       "@@-0@@": "-0", "@@NaN@@": "NaN"}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts | st.sampled_from(sorted(RAW)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=16)
#: Records whose fields are sometimes right, so that checks past the schema run too
records = st.fixed_dictionaries(
    {"id": st.one_of(st.sampled_from(["0-0", "0-1", "1-0", "\ud800"]), st.integers(), json_values),
     "response": st.one_of(texts, json_values), "reference": st.one_of(st.sampled_from(["hello !", "fine ."]), texts)},
    optional={"persona": st.lists(texts, max_size=3) | json_values, "context": st.lists(texts, max_size=3),
              "candidates": st.lists(st.sampled_from(["hello !", "fine .", "x"]), max_size=3) | json_values,
              "candidate_scores": st.lists(st.floats() | st.integers(), max_size=3),
              "gold_index": st.integers(-2, 4) | json_values, "nll": st.lists(st.floats() | st.integers(), max_size=3),
              "language": st.sampled_from(["en", "zh", "fr"]), "meta": json_values})
#: Byte fragments of every input format
fragment = st.sampled_from([
    b"\r", b"\t", b" ", b"\xef\xbb\xbf", b"\xff", b"\xed\xa0\x80", b"\x1f\x8b", b"{", b"}", b"[", b"]", b'"', b",",
    b":", b"NaN", b"1e999", b"9" * 30, b"\\ud800", b"\xc2\xb2 ", b"1 ", b"2 ", b"your persona: i like cats.",
    b"hi there\thello !\t\tno|hello !", b"GT: hello ! ", b"PD: a ", b"==========", b"dist1: 0.5",
    b"persona\tquery\tresponse", b"\"['i like cats.']\"", b"hi there"])
#: Whole lines: good records, records JSON text cannot hold safely, and lines of fragments or random bytes
lines = st.one_of(
    st.sampled_from([json.dumps(r).encode() for r in GOOD]),
    st.sampled_from([b'{"id": %s, "response": "a", "reference": "hello !"}' % (b"9" * 5000),
                     b'{"id": "0-0", "response": "a", "reference": "hello !", "meta": %s}'
                     % (b"[" * 5000 + b"]" * 5000),
                     b'{"id": "\\udfff", "response": "a", "reference": "hello !"}', b"1 your persona: i like cats.",
                     b"\xc2\xb2 hi there\thello !\t\tno|hello !"]),
    st.lists(fragment, min_size=1, max_size=4).map(b"".join), st.binary(max_size=40))
files = st.one_of(st.lists(lines, min_size=1, max_size=6).map(lambda ls: b"\n".join(ls) + b"\n"),
                  st.binary(max_size=600))


def run_cli(argv: list[str], outputs: list[Path]) -> int:
    """``main(argv)``: exit 0 or 2, and no output after 2 (an exception fails the test with its traceback)."""
    code = main(argv)
    assert code in (0, 2)
    if code == 2:
        assert not [p for p in outputs if p.exists()], "an output was written although the command failed"
        assert not [p for p in outputs[0].parent.glob(".*.tmp")], "a temporary file was left behind"
    return code


def score_file(content: bytes, name: str, dataset: bool) -> int:
    """``score FILE --preset parlai --json --per-item`` on ``content`` saved as ``name`` (with the tiny dataset)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = folder / name
        src.write_bytes(content)
        extra: list[str] = []
        if dataset:
            (folder / "valid.txt").write_text(TINY)
            extra = ["--dataset", str(folder / "valid.txt")]
        outputs = [folder / "out.json", folder / "items.csv"]
        return run_cli(["score", str(src), "-q", "--preset", "parlai", "--json", str(outputs[0]),
                        "--per-item", str(outputs[1]), *extra], outputs)


def dump(value: Any, ascii_only: bool) -> bytes:
    """``value`` as JSON text with :data:`RAW` placeholders replaced; lone surrogates become escapes (``ascii_only``)
    or invalid UTF-8 bytes."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    for placeholder, raw in RAW.items():
        text = text.replace(json.dumps(placeholder), raw)
    return text.encode("utf-8", "surrogatepass")


@FUZZ
@given(content=files, name=st.sampled_from(["preds.jsonl", "preds.txt"]), dataset=st.booleans())
def test_score_any_bytes(content: bytes, name: str, dataset: bool) -> None:
    score_file(content, name, dataset)


@FUZZ
@given(values=st.lists(st.one_of(records, json_values), min_size=1, max_size=4), ascii_only=st.booleans(),
       dataset=st.booleans())
def test_score_any_json_lines(values: list[Any], ascii_only: bool, dataset: bool) -> None:
    score_file(b"".join(dump(value, ascii_only) + b"\n" for value in values), "preds.jsonl", dataset)


def test_score_good_records_exit_0() -> None:
    """The fuzzed commands do succeed on good input (the properties above are not vacuous)."""
    assert score_file(b"".join(dump(r, True) + b"\n" for r in GOOD), "preds.jsonl", True) == 0


@lru_cache(maxsize=1)
def good_score_json() -> str:
    """The text of a score JSON of :data:`GOOD` with a sentence-level, a corpus-level and a ranking metric."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "good.jsonl", Path(tmp) / "good.json"
        src.write_bytes(b"".join(dump({**r, "candidates": ["x", r["reference"]], "candidate_scores": [0.2, 0.8]}, True)
                                 + b"\n" for r in GOOD))
        assert main(["score", str(src), "-q", "-m", "f1:parlai", "-m", "bleu:sacrebleu", "-m", "hits@1",
                     "--json", str(out)]) == 0
        return out.read_text("utf-8")


def compare_with(edit: Callable[[str], bytes], test: str = "ar") -> int:
    """``compare GOOD.json B.json --test TEST`` where B is ``edit`` of GOOD's text."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        good, other = folder / "good.json", folder / "b.json"
        good.write_text(good_score_json(), encoding="utf-8")
        other.write_bytes(edit(good_score_json()))
        out = folder / "table.txt"
        return run_cli(["compare", str(good), str(other), "-q", "--test", test, "--resamples", "50",
                        "--ci-resamples", "20", "-o", str(out)], [out])


@FUZZ
@given(value=json_values, ascii_only=st.booleans())
def test_compare_any_score_json(value: Any, ascii_only: bool) -> None:
    """Any JSON value that names ``pdg_eval_version`` near its start is read as a score JSON."""
    doc = {"pdg_eval_version": "0.1.0", **value} if isinstance(value, dict) else ["pdg_eval_version", value]
    compare_with(lambda _: dump(doc, ascii_only))


def replace_at(doc: Any, path: list[int], value: Any) -> Any:
    """``doc`` with the node reached by ``path`` (indices into the keys or items met on the way) set to ``value``."""
    if not path or not isinstance(doc, (dict, list)) or not doc:
        return value
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = keys[path[0] % len(keys)]
    doc[key] = replace_at(doc[key], path[1:], value)
    return doc


@FUZZ
@given(path=st.lists(st.integers(0, 50), max_size=4), value=json_values)
def test_compare_mutated_score_json(path: list[int], value: Any) -> None:
    """A real score JSON with one node (document, metric entry, id list, ...) replaced by any JSON value."""
    compare_with(lambda text: dump(replace_at(json.loads(text), path, value), True))


@FUZZ
@given(metric=st.integers(0, 2), item=st.integers(0, 2), value=json_values,
       test=st.sampled_from(["ar", "bootstrap", "t"]))
def test_compare_mutated_item_stats(metric: int, item: int, value: Any, test: str) -> None:
    """One item's statistics of one metric replaced by any JSON value, under each paired test."""
    def edit(text: str) -> bytes:
        doc = json.loads(text)
        doc["items"]["stats"][doc["metrics"][metric]["signature"]["string"]][item] = value
        return dump(doc, True)
    compare_with(edit, test)


def test_compare_unchanged_score_json_exit_0() -> None:
    assert compare_with(lambda text: text.encode("utf-8")) == 0
