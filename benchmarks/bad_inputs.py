"""Malformed inputs to ``pdg-eval score``, ``compare``, ``annotate import`` and ``leaderboard build``, each run as a
subprocess in a temporary folder.

Every case must end with exit code 0 or 2 (2 where the input is malformed), no ``Traceback`` on stderr, one stderr
line on exit 2, no output file (nor temporary file) left after exit 2, and every input file byte-identical
afterwards (sha256). Prints a markdown table and a summary line; exits 1 when any check fails.

    python benchmarks/bad_inputs.py [--jobs 2] [--only SUBSTRING] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 180

#: ConvAI2 in ParlAI text: two dialogues, three turns (candidates with the gold last)
TINY = ("1 your persona: i like cats.\n2 your persona: i am tall.\n3 hi there\thello !\t\tno|hello !\n"
        "4 how are you ?\tfine .\t\tbad|fine .\n1 your persona: i swim.\n2 hey\tyo\t\tx|yo\n")
GOLDS = {"0-0": "hello !", "0-1": "fine .", "1-0": "yo"}
USR_ASPECTS = {"Understandable": 1, "Natural": 3, "Maintains Context": 3, "Engaging": 2, "Uses Knowledge": 0,
               "Overall": 4}


@dataclass
class Case:
    """One command on one malformed input; ``expect`` None: exit 0 and 2 are both acceptable."""

    name: str
    kind: str
    argv: list[str]
    outputs: list[Path] = field(default_factory=list)
    expect: int | None = 2


@dataclass
class Outcome:
    case: Case
    code: int | None
    stderr: str
    problems: list[str]


# ------------------------------------------------------------------------------------------------ fixtures


def record(rid: str = "0-0", **fields: object) -> dict:
    """A valid record (reference = the tiny dataset's gold), with ``fields`` replaced."""
    return {"id": rid, "persona": ["i like cats."], "context": ["hi there"], "response": "hello there",
            "reference": GOLDS.get(rid, "hello !"), **fields}


def jsonl(*lines: object) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


GOOD_JSONL = jsonl(*(record(rid, response=f"{gold} ok") for rid, gold in GOLDS.items()))


def usr_entry(**changes: object) -> dict:
    """One USR PersonaChat item (the shape of ``pc_usr_data.json``) with two responses."""
    responses = [{"model": model, "response": text, **{a: [v, v, v] for a, v in USR_ASPECTS.items()}}
                 for model, text in (("Original Ground Truth", "i like dogs\n"), ("Seq2Seq", "me too\n"))]
    return {"context": "hi\nhello how are you ?\n", "fact": "your persona: i like dogs.\n",
            "annotators": ["a", "b", "c"], "responses": responses, **changes}


class Folder:
    """The temporary folder: ``fixtures/`` (shared, read-only inputs) and one sub-folder per case."""

    def __init__(self, root: Path):
        self.root = root
        self.fixtures = root / "fixtures"
        self.fixtures.mkdir()

    def case_dir(self, name: str) -> Path:
        path = self.root / "cases" / name
        path.mkdir(parents=True)
        return path

    def fixture(self, name: str, content: str | bytes) -> Path:
        return write(self.fixtures / name, content)


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    path.write_bytes(content)
    return path


def pdg_eval() -> list[str]:
    """The ``pdg-eval`` console script of this interpreter's environment (else ``python -m``)."""
    script = Path(sys.executable).parent / "pdg-eval"
    if script.exists():
        return [str(script)]
    found = shutil.which("pdg-eval")
    return [found] if found else [sys.executable, "-m", "pdg_eval.cli.main"]


def good_score_json(folder: Folder) -> dict:
    """A score JSON of the good records, written by ``pdg-eval score --json`` (setup: must succeed)."""
    src = folder.fixture("good.jsonl", GOOD_JSONL)
    out = folder.fixtures / "good.json"
    done = subprocess.run([*pdg_eval(), "score", str(src), "-q", "-m", "f1:parlai", "-m", "bleu", "--json", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0:
        sys.exit(f"setup failed: pdg-eval score on good records: {done.stderr.strip()}")
    return json.loads(out.read_text("utf-8"))


# ---------------------------------------------------------------------------------------------- case lists


def score_cases(folder: Folder, dataset: Path) -> list[Case]:
    """``pdg-eval score INPUT --json --per-item`` on malformed predictions of every format."""
    deep = '{"id": "0-0", "response": "a", "reference": "hello !", "meta": ' + "[" * 200_000 + "]" * 200_000 + "}"
    surrogate = '{"id": "0-0", "response": "a \\ud800 b", "reference": "hello !"}'
    lmedr_head = "persona\tquery\tresponse\n"
    jsonl_inputs: list[tuple[str, str | bytes, int | None]] = [
        ("jsonl_5000_digit_id", '{"id": %s, "response": "a", "reference": "b"}\n' % ("9" * 5000), 2),
        ("jsonl_400_digit_nll", '{"id": "a", "response": "a", "reference": "b", "nll": [%s]}\n' % ("9" * 400), 2),
        ("jsonl_200k_deep_meta", deep + "\n", 2),
        ("jsonl_65_deep_meta", jsonl(record(meta={"x": json.loads("[" * 63 + "]" * 63)})), 2),
        ("jsonl_64_deep_ok", jsonl(record(meta={"x": json.loads("[" * 62 + "]" * 62)})), 0),
        ("jsonl_lone_surrogate_response", surrogate + "\n", 2),
        ("jsonl_lone_surrogate_id", '{"id": "\\udc00", "response": "a", "reference": "b"}\n', 2),
        ("jsonl_lone_surrogate_key", '{"id": "a", "response": "a", "reference": "b", "\\ud83d": 1}\n', 2),
        ("jsonl_surrogate_pair_ok", '{"id": "a", "response": "a \\ud83d\\ude00", "reference": "b"}\n', 0),
        ("jsonl_escaped_backslash_ok", '{"id": "a", "response": "a \\\\ud800", "reference": "b"}\n', 0),
        ("jsonl_nan_literal_in_meta", '{"id": "a", "response": "a", "reference": "b", "meta": {"x": NaN}}\n', 2),
        ("jsonl_infinity_in_scores", jsonl('{"id": "a", "response": "a", "reference": "b", "candidates": ["b", "c"], '
                                           '"candidate_scores": [Infinity, 1]}'), 2),
        ("jsonl_1e999_in_nll", '{"id": "a", "response": "a", "reference": "b", "nll": [1e999]}\n', 2),
        ("jsonl_negative_zero_ok", jsonl('{"id": "a", "response": "a", "reference": "b", "candidates": ["b", "c"], '
                                         '"gold_index": -0, "nll": [-0.0]}'), 0),
        ("jsonl_duplicate_key", '{"id": "a", "response": "a", "reference": "b", "reference": "c"}\n', 2),
        ("jsonl_bom_first_line_ok", b"\xef\xbb\xbf" + GOOD_JSONL.encode(), 0),
        ("jsonl_bom_mid_file", GOOD_JSONL.encode() + b"\xef\xbb\xbf" + jsonl(record("9")).encode(), 2),
        ("jsonl_cr_only_line_ends", GOOD_JSONL.replace("\n", "\r"), 2),
        ("jsonl_crlf_ok", GOOD_JSONL.replace("\n", "\r\n"), 0),
        ("jsonl_empty_file", "", 2),
        ("jsonl_blank_lines_only", "\n \n\t\n", 2),
        ("jsonl_not_utf8", jsonl(record()).encode() + b'{"id": "x", "response": "caf\xe9", "reference": "b"}\n', 2),
        ("jsonl_utf16", GOOD_JSONL.encode("utf-16"), 2),
        ("jsonl_gzip", gzip.compress(GOOD_JSONL.encode()), 2),
        ("jsonl_random_bytes", bytes(range(256)) * 8, 2),
        ("jsonl_truncated_line", GOOD_JSONL + '{"id": "x", "resp', 2),
        ("jsonl_trailing_comma", '{"id": "a", "response": "a", "reference": "b",}\n', 2),
        ("jsonl_single_quotes", "{'id': 'a', 'response': 'a', 'reference': 'b'}\n", 2),
        ("jsonl_top_level_array", "[1, 2, 3]\n", 2),
        ("jsonl_top_level_string", '"just text"\n', 2),
        ("jsonl_2MiB_line", jsonl(record(response="la " * 700_000)), 2),
        ("jsonl_bool_id", jsonl(record(id=True)), 2),
        ("jsonl_float_id", jsonl(record(id=1.5)), 2),
        ("jsonl_empty_reference_list", jsonl(record(reference=[])), 2),
        ("jsonl_gold_not_in_candidates", jsonl(record(candidates=["x", "y"])), 2),
        ("jsonl_huge_gold_index", jsonl(record(candidates=["hello !", "y"], gold_index=10 ** 30)), 2),
        ("jsonl_negative_nll", jsonl(record(nll=[-1.0])), 2),
        ("jsonl_mixed_languages", jsonl(record("0-0", language="en"), record("0-1", language="zh")), 2),
        ("jsonl_duplicate_ids", jsonl(record("0-0"), record("0-0")), 2),
        ("jsonl_persona_object", jsonl(record(persona={"a": 1})), 2),
        ("jsonl_meta_list", jsonl(record(meta=[1])), 2),
        ("jsonl_nul_characters_ok", jsonl(record(id="a\u0000", response="a\u0000b")), 0),
        ("jsonl_control_char_in_string", '{"id": "a", "response": "a\tb", "reference": "b"}\n', 2),
    ]
    cases = [_score_case(folder, name, "preds.jsonl", content, expect) for name, content, expect in jsonl_inputs]
    convai2_inputs: list[tuple[str, str, int | None]] = [
        ("convai2_number_skipped", "1 your persona: a.\n3 hi\tyo\t\tx|yo\n", 2),
        ("convai2_superscript_number", "1 your persona: a.\n\u00b2 hi\tyo\t\tx|yo\n", 2),
        ("convai2_arabic_digit", "\u0661 hi\tyo\t\tx|yo\n", 2),
        ("convai2_5000_digit_number", "9" * 5000 + " hi\tyo\t\tx|yo\n", 2),
        ("convai2_persona_after_turn", "1 your persona: a.\n2 hi\tyo\t\tx|yo\n3 your persona: b.\n", 2),
        ("convai2_no_label", "1 your persona: a.\n2 hi there\n", 2),
        ("convai2_five_fields", "1 hi\tyo\t\tx|yo\textra\n", 2),
        ("convai2_two_labels", "1 hi\tyo|ya\t\tx|yo\n", 2),
        ("convai2_gold_not_a_candidate", "1 hi\tyo\t\tx|y\n", 2),
        ("convai2_one_candidate", "1 hi\tyo\t\tyo\n", 2),
        ("convai2_persona_only", "1 your persona: a.\n2 your persona: b.\n", 2),
        ("convai2_starts_at_2", "2 hi\tyo\t\tx|yo\n", 2),
        ("convai2_cr_only", TINY.replace("\n", "\r"), 2),
        ("convai2_no_number", "hi\tyo\t\tx|yo\n", 2),
    ]
    cases += [_score_case(folder, name, "valid.txt", content, expect, "--format", "convai2")
              for name, content, expect in convai2_inputs]
    other_inputs: list[tuple[str, str, str | bytes, int | None, tuple[str, ...]]] = [
        ("lines_without_reference", "hyp.txt", "a\nb\nc\n", 2, ()),
        ("lines_short_of_dataset", "hyp.txt", "a\nb\n", 2, ("--dataset", str(dataset))),
        ("lines_longer_than_dataset", "hyp.txt", "a\nb\nc\nd\n", 2, ("--dataset", str(dataset))),
        ("lines_concatenated_bom", "hyp.txt", b"a\nb\n\xef\xbb\xbfc\n", 2, ("--dataset", str(dataset))),
        ("lines_ok_with_dataset", "hyp.txt", "a\nb\nc\n", 0, ("--dataset", str(dataset))),
        ("paa_missing_pd", "paa.txt", "dist1: 0.5\n==========\nGT: hello ! \nPD: a \n==========\nGT: fine . \n", 2, ()),
        ("paa_two_gt", "paa.txt", "==========\nGT: a \nGT: b \nPD: c \n", 2, ()),
        ("paa_unexpected_line", "paa.txt", "==========\nGT: a \nPD: b \nnoise\n", 2, ()),
        ("paa_header_only", "paa.txt", "dist1: 0.5\n==========\n", 2, ()),
        ("paa_nothing_aligns", "paa.txt", "==========\nGT: zzz \nPD: a \n", 2, ("--dataset", str(dataset))),
        ("lmedr_two_columns", "out.tsv", lmedr_head + "\"['i like cats.']\"\thi there\n", 2,
         ("--dataset", str(dataset))),
        ("lmedr_bad_header", "out.tsv", "persona\tquery\n", 2, ("--format", "lmedr", "--dataset", str(dataset))),
        ("lmedr_persona_not_list", "out.tsv", lmedr_head + "\"'x'\"\thi there\tr\n", 2, ("--dataset", str(dataset))),
        ("lmedr_persona_unhashable", "out.tsv", lmedr_head + "\"{[1]: 2}\"\thi there\tr\n", 2,
         ("--dataset", str(dataset))),
        ("lmedr_persona_surrogate", "out.tsv", lmedr_head + "\"['\\ud800']\"\thi there\tr\n", 2,
         ("--dataset", str(dataset))),
        ("lmedr_persona_deep", "out.tsv", lmedr_head + "\"" + "[" * 5000 + "]" * 5000 + "\"\thi there\tr\n", 2,
         ("--dataset", str(dataset))),
        ("lmedr_persona_huge_int", "out.tsv", lmedr_head + "\"[" + "9" * 5000 + "]\"\thi there\tr\n", 2,
         ("--dataset", str(dataset))),
        ("lmedr_without_dataset", "out.tsv", lmedr_head + "\"['a']\"\thi there\tr\n", 2, ()),
        ("lmedr_query_mismatch", "out.tsv", lmedr_head + "\"['a']\"\twho ?\tr\n", 2, ("--dataset", str(dataset))),
        ("lmedr_too_few_rows", "out.tsv", lmedr_head + "\"['a']\"\thi there\tr\n", 2, ("--dataset", str(dataset))),
        ("lmedr_unterminated_quote", "out.tsv", lmedr_head + "\"['a']\thi there\tr\n", 2,
         ("--dataset", str(dataset))),
        ("lmedr_field_over_csv_limit", "out.tsv", lmedr_head + "\"['a']\"\t" + "x" * 200_000 + "\tr\n", 2,
         ("--dataset", str(dataset))),
        ("dataset_is_jsonl", "hyp.txt", "a\nb\nc\n", 2, ("--dataset", "DATASET_JSONL")),
        ("dataset_missing", "hyp.txt", "a\nb\nc\n", 2, ("--dataset", "/nonexistent/valid.txt")),
        ("dataset_is_a_folder", "hyp.txt", "a\nb\nc\n", 2, ("--dataset", "FOLDER")),
        ("jsonl_with_dataset_unknown_id", "preds.jsonl", jsonl(record("7-0")), 2, ("--dataset", str(dataset))),
        ("jsonl_with_refs", "preds.jsonl", GOOD_JSONL, 2, ("--refs", str(dataset))),
        ("max_record_bytes_zero", "preds.jsonl", GOOD_JSONL, 2, ("--max-record-bytes", "0")),
        ("max_record_bytes_negative", "preds.jsonl", GOOD_JSONL, 2, ("--max-record-bytes", "-5")),
    ]
    placeholders = {"DATASET_JSONL": str(folder.fixtures / "good.jsonl"), "FOLDER": str(folder.fixtures)}
    for name, file_name, content, expect, extra in other_inputs:
        cases.append(_score_case(folder, name, file_name, content, expect, *(placeholders.get(a, a) for a in extra)))
    return cases + _score_path_cases(folder)


def _score_case(folder: Folder, name: str, file_name: str, content: str | bytes, expect: int | None,
                *extra: str) -> Case:
    where = folder.case_dir(name)
    src = write(where / file_name, content)
    out_json, out_csv = where / "out.json", where / "items.csv"
    return Case(name, "score", ["score", str(src), "-q", "-m", "f1:parlai", "--json", str(out_json),
                                "--per-item", str(out_csv), *extra], [out_json, out_csv], expect)


def _score_path_cases(folder: Folder) -> list[Case]:
    """Inputs that are not files, and output paths that are inputs, folders or in missing folders."""
    cases = []
    where = folder.case_dir("input_is_a_folder")
    cases.append(Case("input_is_a_folder", "score", ["score", str(where), "-q", "-m", "f1:parlai"]))
    cases.append(Case("input_missing", "score", ["score", str(folder.root / "nope.jsonl"), "-q", "-m", "f1:parlai"]))
    where = folder.case_dir("input_unreadable")
    src = write(where / "preds.jsonl", GOOD_JSONL)
    src.chmod(0)
    cases.append(Case("input_unreadable", "score", ["score", str(src), "-q", "-m", "f1:parlai", "--json",
                                                     str(where / "out.json")], [where / "out.json"],
                      None if os.geteuid() == 0 else 2))  # root reads any file
    for name, out in (("json_out_is_input", "preds.jsonl"), ("json_out_in_missing_folder", "no/out.json"),
                      ("json_out_is_a_folder", "sub")):
        where = folder.case_dir(name)
        src = write(where / "preds.jsonl", GOOD_JSONL)
        (where / "sub").mkdir()
        outputs = [] if out in ("preds.jsonl", "sub") else [where / out]
        cases.append(Case(name, "score", ["score", str(src), "-q", "-m", "f1:parlai", "--json", str(where / out)],
                          outputs))
    where = folder.case_dir("json_and_per_item_same_path")
    src = write(where / "preds.jsonl", GOOD_JSONL)
    cases.append(Case("json_and_per_item_same_path", "score",
                      ["score", str(src), "-q", "-m", "f1:parlai", "--json", str(where / "o"), "--per-item",
                       str(where / "o")], [where / "o"]))
    return cases


def compare_cases(folder: Folder, score_doc: dict) -> list[Case]:
    """``pdg-eval compare GOOD.json OTHER -o out.txt`` with a malformed score JSON or predictions file as OTHER."""
    good = folder.fixtures / "good.json"
    text = good.read_text("utf-8")

    def changed(edit: Callable[[dict], object]) -> str:
        doc = json.loads(text)
        edit(doc)
        return json.dumps(doc)

    sig, bleu_sig = (score_doc["metrics"][k]["signature"]["string"] for k in (0, 1))
    inputs: list[tuple[str, str, str | bytes]] = [
        ("score_json_truncated", "b.json", text[: len(text) // 2]),
        ("score_json_empty_object", "b.json", '{"pdg_eval_version": "0.1.0"}'),
        ("score_json_is_a_list", "b.json", '["pdg_eval_version"]'),
        ("score_json_no_items", "b.json", changed(lambda d: d.pop("items"))),
        ("score_json_unknown_metric", "b.json", changed(lambda d: d["metrics"][0].update(spec="nope:x"))),
        ("score_json_bad_metric_option", "b.json", changed(lambda d: d["metrics"][0].update(spec="bleu,colour=red"))),
        ("score_json_integer_ids", "b.json", changed(lambda d: d["items"].update(ids=[1, 2, 3]))),
        ("score_json_ids_short", "b.json", changed(lambda d: d["items"]["ids"].pop())),
        ("score_json_stats_not_list", "b.json", changed(lambda d: d["items"]["stats"].update({sig: 5}))),
        ("score_json_missing_signature", "b.json", changed(lambda d: d["items"]["stats"].pop(sig))),
        ("score_json_item_stat_null", "b.json", changed(lambda d: d["items"]["stats"][sig].__setitem__(0, None))),
        ("score_json_item_stat_short", "b.json",
         changed(lambda d: d["items"]["stats"][bleu_sig].__setitem__(1, [1, 2]))),
        ("score_json_missing_value", "b.json", changed(lambda d: d["metrics"][0].update(values={}))),
        ("score_json_value_is_text", "b.json", changed(lambda d: d["metrics"][0]["values"].update(f1="high"))),
        ("score_json_metric_twice", "b.json", changed(lambda d: d["metrics"].append(d["metrics"][0]))),
        ("score_json_fingerprints_short", "b.json",
         changed(lambda d: d["items"].setdefault("fingerprints", {}).update(references=["x"]))),
        ("score_json_duplicate_ids", "b.json", changed(lambda d: d["items"].update(ids=["0-0", "0-0", "1-0"]))),
        ("score_json_no_shared_ids", "b.json", changed(lambda d: d["items"].update(ids=["x", "y", "z"]))),
        ("score_json_not_utf8", "b.json", text.encode()[:40] + b"\xff" + text.encode()[40:]),
        ("score_json_lone_surrogate", "b.json", text.replace('"ids":["0-0"', '"ids":["\\ud800"', 1)),
        ("score_json_deep", "b.json", '{"pdg_eval_version": "0.1.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("score_json_5000_digit_int", "b.json", '{"pdg_eval_version": "0.1.0", "x": ' + "7" * 5000 + "}"),
        ("score_json_duplicate_key", "b.json", text.replace('{"pdg_eval_version"', '{"items": 1, "pdg_eval_version"')),
        ("score_json_empty_file", "b.json", ""),
        ("predictions_malformed_line", "b.jsonl", GOOD_JSONL + "{broken\n"),
        ("predictions_lone_surrogate", "b.jsonl",
         GOOD_JSONL + '{"id": "9", "response": "\\ud800", "reference": "x"}\n'),
    ]
    cases = []
    for name, file_name, content in inputs:
        where = folder.case_dir(name)
        other = write(where / file_name, content)
        out = where / "out.txt"
        cases.append(Case(name, "compare", ["compare", str(good), str(other), "-q", "-m", "f1:parlai", "--resamples",
                                            "200", "--ci-resamples", "0", "-o", str(out)], [out]))
    cases += _compare_argument_cases(folder, good)
    return cases


def _compare_argument_cases(folder: Folder, good: Path) -> list[Case]:
    cases = []
    where = folder.case_dir("compare_one_system")
    cases.append(Case("compare_one_system", "compare", ["compare", str(good), "-q", "-o", str(where / "out.txt")],
                      [where / "out.txt"]))
    where = folder.case_dir("compare_names_mismatch")
    cases.append(Case("compare_names_mismatch", "compare", ["compare", str(good), str(good), "--name", "a", "-q",
                                                            "-o", str(where / "out.txt")], [where / "out.txt"]))
    where = folder.case_dir("compare_out_is_input")
    other = write(where / "b.json", good.read_text("utf-8"))
    cases.append(Case("compare_out_is_input", "compare", ["compare", str(good), str(other), "--name", "a", "--name",
                                                          "b", "-q", "-o", str(other)]))
    where = folder.case_dir("compare_out_in_missing_folder")
    cases.append(Case("compare_out_in_missing_folder", "compare",
                      ["compare", str(good), str(good), "--name", "a", "--name", "b", "-q", "--resamples", "200",
                       "-o", str(where / "no" / "out.txt")], [where / "no" / "out.txt"]))
    where = folder.case_dir("compare_input_folder_named_json")
    (where / "x.json").mkdir()
    cases.append(Case("compare_input_folder_named_json", "compare",
                      ["compare", str(good), str(where / "x.json"), "-q", "-o", str(where / "out.txt")],
                      [where / "out.txt"]))
    where = folder.case_dir("compare_leaderboard_run_json")
    run = write(where / "pdg.json", json.dumps({"comparison": {"pdg_eval_version": "0.1.0"}, "provenance": {}}))
    cases.append(Case("compare_leaderboard_run_json", "compare",
                      ["compare", str(good), str(run), "-q", "-o", str(where / "out.txt")], [where / "out.txt"]))
    return cases


def annotate_cases(folder: Folder) -> list[Case]:
    """``pdg-eval annotate import usr-personachat FILE --out DIR`` on malformed judgment files."""
    good = [usr_entry(), usr_entry(context="hey\n")]
    score_out = usr_entry()
    score_out["responses"][1]["Overall"] = [1, 2, 9]
    inputs: list[tuple[str, str | bytes, int | None]] = [
        ("usr_ok", json.dumps(good), 0),
        ("usr_truncated", json.dumps(good)[:100], 2),
        ("usr_not_a_list", json.dumps(good[0]), 2),
        ("usr_empty_list", "[]", 2),
        ("usr_entry_not_object", "[1, 2]", 2),
        ("usr_missing_responses", json.dumps([{k: v for k, v in good[0].items() if k != "responses"}]), 2),
        ("usr_score_out_of_range", json.dumps([score_out]), 2),
        ("usr_score_nan", json.dumps(good).replace("[0, 0, 0]", "[NaN, 0, 0]", 1), 2),
        ("usr_score_5000_digits", json.dumps(good).replace("[0, 0, 0]", "[%s, 0, 0]" % ("9" * 5000), 1), 2),
        ("usr_lone_surrogate", json.dumps(good).replace("me too", "me \\udc00 too", 1), 2),
        ("usr_deep", "[" * 100_000 + "]" * 100_000, 2),
        ("usr_not_utf8", b"[\xff]", 2),
        ("usr_empty_file", "", 2),
        ("usr_no_ground_truth", json.dumps([usr_entry(responses=good[0]["responses"][1:])]), 2),
    ]
    cases = []
    for name, content, expect in inputs:
        where = folder.case_dir(name)
        src = write(where / "pc_usr_data.json", content)
        out = where / "imported"
        cases.append(Case(name, "annotate", ["annotate", "import", "usr-personachat", str(src), "--out", str(out)],
                          [out], expect))
    where = folder.case_dir("usr_unknown_format")
    src = write(where / "data.json", json.dumps(good))
    cases.append(Case("usr_unknown_format", "annotate", ["annotate", "import", "nope", str(src), "--out",
                                                         str(where / "imported")], [where / "imported"]))
    where = folder.case_dir("usr_out_is_a_file")
    src = write(where / "data.json", json.dumps(good))
    write(where / "imported", "not a folder")
    cases.append(Case("usr_out_is_a_file", "annotate", ["annotate", "import", "usr-personachat", str(src), "--out",
                                                        str(where / "imported")]))
    return cases


def leaderboard_cases(folder: Folder) -> list[Case]:
    """``pdg-eval leaderboard build --root COPY`` on a copy of leaderboards/ with one file broken."""
    source = REPO / "leaderboards"
    board = "convai2_first100"

    def broken(path: str, content: str | bytes | None) -> Callable[[Path], None]:
        def edit(root: Path) -> None:
            target = root / path
            if content is None:
                target.unlink()
            else:
                write(target, content)
        return edit

    run_text = (source / "runs" / board / "pdg.json").read_text("utf-8")
    edits: list[tuple[str, Callable[[Path], None], int | None]] = [
        ("board_ok", lambda root: None, 0),
        ("board_run_truncated", broken(f"runs/{board}/pdg.json", run_text[: len(run_text) // 2]), 2),
        ("board_run_not_object", broken(f"runs/{board}/pdg.json", "[]"), 2),
        ("board_run_no_comparison", broken(f"runs/{board}/pdg.json", '{"provenance": {}}'), 2),
        ("board_run_lone_surrogate", broken(f"runs/{board}/pdg.json", run_text.replace('"', '"\\ud800', 1)), 2),
        ("board_run_missing", broken(f"runs/{board}/pdg.json", None), 2),
        ("board_toml_malformed", broken(f"{board}.toml", "title = \n[[systems]\n"), 2),
        ("board_toml_empty", broken(f"{board}.toml", ""), 2),
        ("board_toml_not_utf8", broken(f"{board}.toml", b'title = "\xff"\n'), 2),
    ]
    cases = []
    for name, edit, expect in edits:
        where = folder.case_dir(name)
        root = where / "leaderboards"
        shutil.copytree(source, root, ignore=shutil.ignore_patterns("outputs"))
        edit(root)
        outputs = [root / f"{board}.md"] if expect == 0 else []
        cases.append(Case(name, "leaderboard", ["leaderboard", "build", board, "--root", str(root)], outputs, expect))
    cases.append(Case("board_root_missing", "leaderboard",
                      ["leaderboard", "build", "--root", str(folder.root / "no-such-folder")]))
    cases.append(Case("board_unknown_name", "leaderboard",
                      ["leaderboard", "build", "nope", "--root", str(folder.case_dir("board_unknown_name"))]))
    return cases


# ---------------------------------------------------------------------------------------------- running


def snapshot(root: Path) -> dict[Path, str]:
    """sha256 of every file under ``root``."""
    hashes = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            try:
                hashes[path] = hashlib.sha256(path.read_bytes()).hexdigest()
            except PermissionError:  # the unreadable-input case (when not root)
                hashes[path] = "unreadable"
    return hashes


def run_case(case: Case, folder: Folder) -> Outcome:
    case_root = folder.root / "cases" / case.name
    watched = [folder.fixtures] + ([case_root] if case_root.is_dir() else [])
    before = {p: h for root in watched for p, h in snapshot(root).items()}
    try:
        done = subprocess.run([*pdg_eval(), *case.argv], capture_output=True, text=True, errors="replace",
                              timeout=TIMEOUT_S, cwd=folder.root, stdin=subprocess.DEVNULL)
        code, stderr = done.returncode, done.stderr
    except subprocess.TimeoutExpired:
        return Outcome(case, None, "", [f"timed out after {TIMEOUT_S} s"])
    after = {p: h for root in watched for p, h in snapshot(root).items()}
    return Outcome(case, code, stderr, check(case, code, stderr, before, after))


def check(case: Case, code: int, stderr: str, before: dict[Path, str], after: dict[Path, str]) -> list[str]:
    """What went wrong: exit code, traceback, stderr lines, partial outputs, changed inputs."""
    problems = []
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code not in (0, 2):
        problems.append(f"exit {code}")
    elif case.expect is not None and code != case.expect:
        problems.append(f"exit {code}, expected {case.expect}")
    if "Traceback" in stderr:
        problems.append("traceback")
    if code == 2 and len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines")
    outputs = [p for p in case.outputs]
    if code != 0:
        left = [p.name for p in outputs if p.exists()]
        left += [p.name for p in after if p not in before and p not in outputs
                 and not any(o in p.parents for o in outputs)]
        if left:
            problems.append(f"left {', '.join(sorted(set(left)))}")
    changed = [p.name for p, h in before.items() if p not in outputs and after.get(p) != h]
    if changed:
        problems.append(f"changed input {', '.join(changed)}")
    return problems


def first_line(text: str, width: int = 110) -> str:
    line = next((x for x in text.splitlines() if x.strip()), "")
    line = line if len(line) <= width else line[: width - 1] + "…"
    return line.replace("|", "\\|").replace("`", "'")


def table(outcomes: list[Outcome], root: Path) -> str:
    rows = ["| case | command | exit | first stderr line | problems |", "|---|---|---|---|---|"]
    for o in outcomes:
        message = first_line(o.stderr.replace(str(root) + os.sep, ""))
        rows.append(f"| {o.case.name} | {o.case.kind} | {o.code} | {message} | {'; '.join(o.problems) or 'ok'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--only", help="run the cases whose name contains this")
    parser.add_argument("--keep", type=Path, help="build the cases in this (new) folder and keep it")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True)
    root = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="pdg-bad-inputs-"))
    try:
        folder = Folder(root)
        dataset = folder.fixture("valid.txt", TINY)
        score_doc = good_score_json(folder)
        cases = (score_cases(folder, dataset) + compare_cases(folder, score_doc) + annotate_cases(folder)
                 + leaderboard_cases(folder))
        cases = [c for c in cases if not args.only or args.only in c.name]
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            outcomes = list(pool.map(lambda c: run_case(c, folder), cases))
        print(table(outcomes, root))
        failed = [o for o in outcomes if o.problems]
        kinds = sorted({c.kind for c in cases})
        print(f"\n{len(outcomes)} cases ({', '.join(f'{k} {sum(c.kind == k for c in cases)}' for k in kinds)}), "
              f"{len(failed)} failures" + (f": {', '.join(o.case.name for o in failed)}" if failed else ""))
        return 1 if failed else 0
    finally:
        if not args.keep:
            for path in root.rglob("*"):  # the unreadable case
                if path.is_file():
                    path.chmod(0o644)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
