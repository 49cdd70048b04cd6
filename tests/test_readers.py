"""Readers: real ConvAI2 / published-output files from the shared folder, and malformed input."""

from __future__ import annotations

import gzip
import warnings
from collections import Counter
from pathlib import Path

import pytest

from pdg_eval.errors import ConfigError, InputError
from pdg_eval.readers import (
    FORMATS, align_on_reference, convai2_records, line_records, lmedr_records, match_key, open_records, read_convai2,
    read_lines, read_lmedr, read_paa, sniff_format,
)
from pdg_eval.inputs import MAX_JSON_DEPTH, decode_json, iter_lines, read_text
from pdg_eval.records import record_from_dict
from pdg_eval.files import shared_path

N_TURNS = 7801
FIRST_GOLD = "i am good , i just got off work and tired , i have two jobs ."


def data(*parts: str) -> Path:
    """A file under ``shared/data``; skips the test when the shared folder is missing."""
    try:
        return shared_path("data", *parts)
    except FileNotFoundError as exc:
        pytest.skip(f"shared data not available: {exc}")


@pytest.fixture(scope="module")
def dataset() -> Path:
    return data("convai2", "valid_self_original.txt")


@pytest.fixture(scope="module")
def turns(dataset: Path) -> list:
    return list(read_convai2(dataset))


def error_of(call) -> InputError:
    with pytest.raises(InputError) as info:
        call()
    return info.value


# ------------------------------------------------------------------------------------ real data


def test_convai2_counts(turns: list) -> None:
    assert len(turns) == N_TURNS
    assert turns[-1].dialogue + 1 == len({t.dialogue for t in turns}) == 1000
    assert all(t.candidates is not None and len(t.candidates) == 20 for t in turns)
    assert all(t.candidates[-1] == t.response for t in turns)
    assert Counter(len(t.persona) for t in turns if t.turn == 0) == {4: 517, 5: 483}
    assert all(not t.partner_persona for t in turns)


def test_convai2_first_turns(turns: list) -> None:
    first, second = turns[0], turns[1]
    assert (first.dialogue, first.turn, first.line) == (0, 0, 5)
    assert first.persona == ["i read twenty books a year.", "i'm a stunt double as my second job.",
                             "i only eat kosher.", "i was raised in a single parent household."]
    assert first.context == ["hello what are doing today ?"]
    assert first.response == FIRST_GOLD
    assert first.candidates[0] == "oh really ? i am actually in high school and i am graduating as class of 2019 !"
    assert first.candidates[-1] == FIRST_GOLD
    assert second.context == ["hello what are doing today ?", FIRST_GOLD, "i just got done watching a horror movie"]
    assert second.response == "i rather read , i've read about 20 books this year ."
    assert turns[-1].dialogue == 999 and turns[-1].context[-1] == turns[-1].query


def test_convai2_both_persona_files() -> None:
    for name in ("valid_both_original_no_cands.txt", "valid_both_revised_no_cands.txt"):
        both = list(read_convai2(data("convai2", name)))
        assert len(both) == N_TURNS
        assert all(t.candidates is None and len(t.partner_persona) in (4, 5) for t in both)
    assert both[0].persona[0] == "i've been know to finish almost two dozen novels in a twelve month period."


def test_convai2_records_gold(dataset: Path) -> None:
    records = list(convai2_records(dataset))
    assert len(records) == N_TURNS and len({r.id for r in records}) == N_TURNS
    first = records[0]
    assert (first.id, first.response, first.references, first.gold_index) == ("0-0", FIRST_GOLD, [FIRST_GOLD], 19)
    assert first.source == str(dataset) and first.line == 5
    assert records[1].id == "0-1" and records[-1].id.startswith("999-")


def test_sc_gpt_lines(dataset: Path) -> None:
    folder = data("outputs", "sc_gpt")
    for name in ("hyp-dg", "hyp-lex_pos_ord", "hyp-multitask", "hyp-normal_ord", "hyp-pos_maj10", "hyp-single_pos", "ref"):
        assert sum(1 for _ in read_lines(folder / name)) == N_TURNS, name
    records = list(line_records(folder / "hyp-normal_ord", folder / "ref", dataset))
    assert len(records) == N_TURNS
    assert records[0].response == "hi! just finished reading my 20th book. you?"
    assert records[1].references == ["i rather read , i have read about 20 books this year ."]  # the normalised ref
    assert records[1].gold_index == 19 and records[1].persona[0] == "i read twenty books a year."
    plain = next(line_records(folder / "hyp-dg", dataset_path=dataset))
    assert plain.references == [FIRST_GOLD] and (plain.source, plain.line) == (str(folder / "hyp-dg"), 1)
    assert sum(1 for r in line_records(folder / "hyp-pos_maj10", folder / "ref") if r.response == "") == 1116


@pytest.mark.parametrize("name", ["persona_original.tsv", "persona_revised.tsv"])
def test_lmedr_join(name: str, dataset: Path, turns: list) -> None:
    path = data("outputs", "lmedr", name)
    rows = list(read_lmedr(path))
    assert len(rows) == N_TURNS and rows[0].line == 2
    assert all(row.query == turn.query.strip() for row, turn in zip(rows, turns))
    records = list(lmedr_records(path, dataset))
    assert len(records) == N_TURNS
    first = records[0]
    assert first.references == [FIRST_GOLD] and first.context == ["hello what are doing today ?"]
    assert len(first.candidates) == 20 and first.line == 2
    if name == "persona_original.tsv":
        assert first.persona == turns[0].persona
        assert first.response == "i'm reading a book . i read about 20 a year ."
    else:
        assert first.persona[0] == "i've been know to finish almost two dozen novels in a twelve month period."


def test_paa_parse() -> None:
    for name in ("PAA.txt", "encoder_gpt.txt"):
        records = list(read_paa(data("outputs", "paa", name)))
        assert len(records) == N_TURNS
        assert records[0].reference == ("there are scorpions everywhere!!! seas of scorpions for miles in all directions! "
                                        "ree!!!")
        assert records[-1].id == "paa-7800" and records[0].line == 7
    assert records[0].meta["pd_line"] == 8


@pytest.mark.parametrize("name", ["PAA.txt", "encoder_gpt.txt"])
def test_paa_alignment(name: str, dataset: Path) -> None:
    report, aligned = align_on_reference(read_paa(data("outputs", "paa", name)), dataset)
    # 10 dialogues (50 turns) carry their last gold on every turn in the PAA files; those rows cannot match.
    assert (report.matched, report.unmatched, report.unmatched_turns) == (7751, 50, 50)
    assert report.unmatched_lines[:2] == [20290, 20293]
    assert report.unmatched_examples[0] == "my mom knitted me a grey and brown scorpion once. i hate her."
    assert len(aligned) == 7751 and len({r.id for r in aligned}) == 7751
    first = aligned[0]
    assert first.id == "0-0" and first.reference == "i am good , i just got off work and tired , i have two jobs ."
    assert first.meta["output_reference"] == "i am good, i just got off work and tired, i have two jobs."
    assert first.gold_index == 19 and first.meta["dataset_line"] == 5
    assert all(match_key(r.reference) == match_key(r.candidates[r.gold_index]) for r in aligned)


def test_match_key() -> None:
    assert match_key("they're.") == match_key("They 're .") == "theyre"
    assert match_key("ree!!!") == match_key("ree ! ! !") and match_key("«ça»\u3000va") == "çava"


def test_sniff_and_open(dataset: Path) -> None:
    assert FORMATS == ("jsonl", "convai2", "paa", "lmedr", "lines")
    assert sniff_format(dataset) == "convai2"
    assert sniff_format(data("convai2", "valid_both_revised_no_cands.txt")) == "convai2"
    assert sniff_format(data("outputs", "paa", "PAA.txt")) == "paa"
    assert sniff_format(data("outputs", "lmedr", "persona_revised.tsv")) == "lmedr"
    assert sniff_format(data("outputs", "sc_gpt", "hyp-dg")) == "lines"
    hyps = data("outputs", "sc_gpt", "hyp-dg")
    assert next(open_records(dataset, hypotheses=hyps)).response == "hi, i am doing good, what are you doing?"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sum(1 for _ in open_records(data("outputs", "paa", "PAA.txt"), dataset=dataset)) == 7751
    assert "50 output rows unmatched" in str(caught[0].message)


# ------------------------------------------------------------------------------------ bad input

TINY = (
    "1 your persona: i like cats.\n"
    "2 your persona: i am tall.\n"
    "3 hi there\thello !\t\tno|hello !\n"
    "4 how are you ?\tfine .\t\tbad|fine .\n"
    "1 your persona: i swim.\n"
    "2 hey\tyo\t\tx|yo\n"
)


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(TINY)
    return path


def test_tiny_convai2(tiny: Path) -> None:
    records = list(convai2_records(tiny, ["a", "b", "c"], "hyp.txt"))
    assert [r.id for r in records] == ["0-0", "0-1", "1-0"]
    assert records[1].context == ["hi there", "hello !", "how are you ?"] and records[1].response == "b"
    assert (records[2].source, records[2].line, records[2].meta["dataset_line"]) == ("hyp.txt", 3, 6)
    assert records[2].persona == ["i swim."] and records[2].gold_index == 1
    assert sniff_format(tiny) == "convai2"


def test_hypothesis_count_mismatch(tiny: Path, tmp_path: Path) -> None:
    short = error_of(lambda: list(convai2_records(tiny, ["a", "b"], "hyp.txt")))
    assert str(short) == "hyp.txt:3: hypotheses: file has 2 lines but the dataset has 3 turns"
    long = error_of(lambda: list(convai2_records(tiny, ["a", "b", "c", "d", "e"], "hyp.txt")))
    assert str(long) == "hyp.txt:4: hypotheses: file has 5 lines but the dataset has 3 turns"
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("a\nb\n")
    assert str(error_of(lambda: list(line_records(hyp, dataset_path=tiny)))).startswith(f"{hyp}:3: hypotheses:")
    ref = tmp_path / "ref.txt"
    ref.write_text("r1\nr2\nr3\n")
    assert str(error_of(lambda: list(line_records(hyp, ref)))) == (
        f"{hyp}:3: hypotheses: file has 2 lines but {ref} has 3 lines")


def test_hypothesis_count_mismatch_real(dataset: Path, tmp_path: Path) -> None:
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("x\n" * (N_TURNS - 1))
    error = error_of(lambda: list(open_records(dataset, hypotheses=hyp)))
    assert str(error) == f"{hyp}:7801: hypotheses: file has 7800 lines but the dataset has 7801 turns"


def test_paa_block_without_pd(tmp_path: Path) -> None:
    path = tmp_path / "paa.txt"
    path.write_text("    dist1: 0.5\n==========\nGT: a b \nPD: c \n==========\nGT: d \n==========\nGT: e \nPD: f \n")
    error = error_of(lambda: list(read_paa(path)))
    assert str(error).startswith(f"{path}:6: PD: block has a 'GT:' line but no 'PD:' line")
    path.write_text("==========\nGT: a \nPD: b \nGT: c \n")
    assert str(error_of(lambda: list(read_paa(path)))).startswith(f"{path}:4: GT: second 'GT:' line")
    path.write_text("==========\nPD: a \nGT: b \n==========\nPD: c \n")
    assert str(error_of(lambda: list(read_paa(path)))).startswith(f"{path}:5: GT: block has a 'PD:' line")


def test_lmedr_query_mismatch(tiny: Path, tmp_path: Path) -> None:
    path = tmp_path / "lmedr.tsv"
    good = "persona\tquery\tresponse\n\"[' i like cats.']\"\t hi there\tr1\n"
    path.write_text(good + "\"[' i like cats.']\"\t how old are you ?\tr2\n\"[]\"\t hey\tr3\n")
    error = error_of(lambda: list(lmedr_records(path, tiny)))
    assert str(error).startswith(f"{path}:3: query: 'how old are you ?' differs from the dataset's partner utterance "
                                 "'how are you ?' (line 4)")
    path.write_text(good)
    assert str(error_of(lambda: list(lmedr_records(path, tiny)))) == (
        f"{path}:3: rows: file has 1 rows but the dataset has 3 turns")
    path.write_text("persona\tquery\tresponse\n\"[' a', 3]\"\thi\tr\n")
    assert str(error_of(lambda: list(read_lmedr(path)))).startswith(f"{path}:2: persona: expected a list of strings")
    path.write_text("persona\tquery\n")
    assert str(error_of(lambda: list(read_lmedr(path)))).startswith(f"{path}:1: header:")


def test_non_utf8_byte(tmp_path: Path, tiny: Path) -> None:
    hyp = tmp_path / "hyp.txt"
    hyp.write_bytes(b"fine\ncaf\xe9\nok\n")
    error = error_of(lambda: list(open_records(hyp, dataset=tiny)))
    assert str(error) == f"{hyp}:2: record: not valid UTF-8 (byte 0xe9 at column 4)"
    paa = tmp_path / "paa.txt"
    paa.write_bytes(b"\xef\xbb\xbf==========\nGT: a \nPD: \xff \n")
    assert str(error_of(lambda: list(open_records(paa)))).startswith(f"{paa}:3: record: not valid UTF-8")


def test_bad_convai2(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("1 your persona: a.\n3 hi\tyo\n")
    assert str(error_of(lambda: list(read_convai2(path)))).startswith(f"{path}:2: turn number 3 does not follow 1")
    path.write_text("1 hi\tyo\t\tx|y\n")
    assert str(error_of(lambda: list(convai2_records(path)))) == (
        f"{path}:1: candidates: the gold response is not among the candidates")
    path.write_text("1 hi there\n")
    assert str(error_of(lambda: list(read_convai2(path)))).startswith(f"{path}:1: label:")
    path.write_text("1 your persona: a.\n2 hi\tyo\n3 your persona: b.\n")
    assert str(error_of(lambda: list(read_convai2(path)))).startswith(f"{path}:3: persona:")
    path.write_text("\n2 hi\tyo\n")
    assert str(error_of(lambda: list(read_convai2(path)))) == f"{path}:2: the file starts with turn number 2; dialogues start at 1"
    path.write_text("hello\tyo\n")
    assert str(error_of(lambda: list(read_convai2(path)))).startswith(f"{path}:1: expected 'N text'")


def test_open_records_needs_references(tmp_path: Path) -> None:
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("a\nb\n")
    assert "no reference" in str(error_of(lambda: open_records(hyp)))
    assert "no reference" in str(error_of(lambda: open_records(hyp, fmt="lmedr")))
    with pytest.raises(ConfigError):
        open_records(hyp, fmt="csv")
    with pytest.raises(ConfigError):
        open_records(hyp, fmt="jsonl", refs=hyp)
    ref = tmp_path / "ref.txt"
    ref.write_text("r\ns\n")
    assert [r.references for r in open_records(hyp, refs=ref)] == [["r"], ["s"]]
    jsonl = tmp_path / "out.data"
    jsonl.write_text('{"id": 1, "response": "a", "reference": "b"}\n')
    assert sniff_format(jsonl) == "jsonl" and next(open_records(jsonl)).reference == "b"


def test_jsonl_records_take_persona_and_context_from_the_dataset(tiny: Path, tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"id": "0-1", "response": "ok", "reference": "fine ."}\n'
                    '{"id": "1-0", "response": "yo", "reference": "yo", "persona": ["own"], "context": ["own"]}\n')
    first, second = open_records(path, "jsonl", dataset=tiny)
    assert (first.persona, first.context) == (["i like cats.", "i am tall."], ["hi there", "hello !", "how are you ?"])
    assert (second.persona, second.context) == (["own"], ["own"])  # fields the record has are kept
    path.write_text('{"id": "0-1", "response": "ok", "reference": "bad"}\n')
    error = error_of(lambda: list(open_records(path, "jsonl", dataset=tiny)))
    assert (error.line, error.field) == (1, "reference") and "'fine .'" in str(error)
    path.write_text('{"id": "0-1", "response": "ok", "reference": "fine ."}\n{"id": "7-0", "response": "a", '
                    '"reference": "b"}\n')
    error = error_of(lambda: list(open_records(path, "jsonl", dataset=tiny)))
    assert (error.line, error.field) == (2, "id") and "'7-0' is not a turn" in str(error)


# ------------------------------------------------------------------------------------ strict JSON and text


@pytest.mark.parametrize("text,message", [
    ('{"a": %s}' % ("9" * 5000), "src:4: record: integer of 5000 digits, over Python's 4300-digit limit"),
    ('{"a": NaN}', "src:4: record: NaN is not valid JSON (use null or a number)"),
    ('{"a": [-Infinity]}', "src:4: record: -Infinity is not valid JSON"),
    ('{"a": 1e999}', "src:4: record: number 1e999 is beyond the range of a double"),
    ('{"a": 1, "a": 2}', "src:4: record: duplicate key 'a' in one object"),
    ('{"a": "x\\ud800"}',
     "src:4: record: \\ud800 is a lone surrogate (half of a UTF-16 pair), not a character (column 9)"),
    ('{"a": "\\udc00\\ud83d\\ude00"}', "src:4: record: \\udc00 is a lone surrogate"),
    ('{"a": "\\ud83d x\\ude00"}', "src:4: record: \\ud83d is a lone surrogate"),
    ('{"a": "\\ud83d"}',
     "src:4: record: \\ud83d is a lone surrogate (half of a UTF-16 pair), not a character (column 8)"),
    ('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}", "src:4: record: nested deeper than 64 arrays/objects (column 70)"),
    ('{"a": "x", }', "src:4: record: malformed JSON: Expecting property name enclosed in double quotes (column 12)"),
])
def test_decode_json_refuses(text: str, message: str) -> None:
    assert str(error_of(lambda: decode_json(text, "src", 4))).startswith(message)


def test_decode_json_accepts() -> None:
    assert decode_json('{"a": "\\ud83d\\ude00 \\\\ud800"}', "src", 1) == {"a": "\U0001F600 \\ud800"}
    nested = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    assert decode_json('{"a": %s}' % nested, "src", 1) is not None  # exactly MAX_JSON_DEPTH levels
    assert decode_json('{"a": "[[[[", "b": -0}', "src", 1) == {"a": "[[[[", "b": 0}
    doc = decode_json('{\n "a": NaN,\n "b": Infinity}', "doc.json", field=None, finite=False)
    assert doc["a"] != doc["a"] and doc["b"] == float("inf")
    error = error_of(lambda: decode_json('{\n "a": 1,\n "b": ]}', "doc.json", field=None))
    assert str(error) == "doc.json:3: malformed JSON: Expecting value (column 7)"
    error = error_of(lambda: decode_json('{\n "a": "\\udfff"}', "doc.json", field=None))
    assert (error.line, error.field) == (2, None) and "(column 8)" in str(error)


def test_record_ids_and_gold_index_are_json_schema_integers() -> None:
    rec = record_from_dict({"id": 1.0, "response": "a", "reference": "b", "candidates": ["b", "c"], "gold_index": 0.0})
    assert rec.id == "1" and rec.gold_index == 0 and isinstance(rec.gold_index, int)
    error = error_of(lambda: record_from_dict({"id": 1, "response": "a", "reference": "b", "nll": [10 ** 400]}, "f", 3))
    assert str(error).startswith("f:3: nll: contains NaN or infinity")


def test_iter_lines_refuses_cr_bom_and_compressed(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"a\rb\rc\r")
    assert str(error_of(lambda: list(iter_lines(path)))) == (
        f"{path}:1: record: carriage return inside the line (column 2): convert CR line ends to LF")
    path.write_bytes(b"a\r\n\xef\xbb\xbfb\r\n")
    assert str(error_of(lambda: list(iter_lines(path)))).startswith(f"{path}:2: record: byte-order mark (U+FEFF)")
    path.write_bytes(gzip.compress(b"a\n"))
    assert str(error_of(lambda: list(iter_lines(path)))).endswith("(a gzip file? decompress it first)")
    path.write_bytes(b"\xef\xbb\xbfa\r\nb\n\n")
    assert list(iter_lines(path)) == [(1, "a"), (2, "b"), (3, "")]
    path.write_bytes(b"ab\n" + b"x" * (3 << 20) + b"\nc\n")  # read in bounded chunks to count its size
    assert str(error_of(lambda: list(iter_lines(path, max_bytes=1 << 20)))) == (
        f"{path}:2: record: line is 3.0 MiB, over the 1.0 MiB limit (raise it with --max-record-bytes)")
    with pytest.raises(ConfigError):
        list(iter_lines(path, max_bytes=0))


def test_read_text_locates_bad_bytes(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(b"\xef\xbb\xbf{\n\"a\": \"caf\xe9\"}")
    assert str(error_of(lambda: read_text(path))) == f"{path}:2: not valid UTF-8 (byte 0xe9 at column 10)"
    path.write_bytes(b"\xef\xbb\xbf{}")
    assert read_text(path) == "{}"


@pytest.mark.parametrize("head", ["\u00b2", "\u0661", "9" * 5000, "1234567890"])
def test_convai2_turn_numbers_are_short_ascii(tmp_path: Path, head: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(f"{head} hi\tyo\t\tx|yo\n", encoding="utf-8")
    assert str(error_of(lambda: list(read_convai2(path)))).startswith(f"{path}:1: expected 'N text' with a positive")


def test_convai2_names_a_json_dataset(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"id": "0-0", "response": "a", "reference": "b"}\n')
    assert str(error_of(lambda: list(read_convai2(path)))).endswith(
        "(this looks like JSON: a ConvAI2 dataset is ParlAI text)")


@pytest.mark.parametrize("persona,message", [
    ("{[1]: 2}", "persona: not a Python list literal of strings"),
    ("['ok', '\\ud800']", "persona.1: escape of U+D800, a lone surrogate (half of a UTF-16 pair), not a character"),
    ("[" * 5000 + "]" * 5000, "persona: not a Python list literal of strings"),
])
def test_lmedr_persona_literal(tmp_path: Path, persona: str, message: str) -> None:
    path = tmp_path / "lmedr.tsv"
    path.write_text(f'persona\tquery\tresponse\n"{persona}"\thi\tr\n', encoding="utf-8")
    assert str(error_of(lambda: list(read_lmedr(path)))) == f"{path}:2: {message}"
