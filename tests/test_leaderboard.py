"""Leaderboards: the committed markdown equals what `pdg-eval leaderboard build` renders from the committed records
(CI runs this check), rendering is byte-identical on re-run, and stale / missing inputs fail clearly."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdg_eval.cli.main import build_parser, main
from pdg_eval.leaderboard import board_names, load_board, render, stale

#: the committed boards (the tests do not depend on the working directory)
LEADERBOARDS = Path(__file__).resolve().parent.parent / "leaderboards"
SMALL = "convai2_first100"  # two presets, no reported numbers


def test_committed_leaderboards_are_fresh(capsys, monkeypatch):
    assert board_names(LEADERBOARDS), "no leaderboard definitions"
    monkeypatch.chdir(LEADERBOARDS.parent)  # without --root: ./leaderboards of the working directory
    code = main(["leaderboard", "check"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines() == [f"{name}.md: up to date" for name in board_names(LEADERBOARDS)]


def test_boards_are_found_in_the_working_directory_not_the_source_tree(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["leaderboard", "check"]) == 2
    assert "--root leaderboards: no such folder (boards are found in ./leaderboards" in capsys.readouterr().err
    shutil.copytree(LEADERBOARDS, tmp_path / "leaderboards")
    assert main(["leaderboard", "check"]) == 0


def copy_small_board(dest: Path) -> Path:
    """The small board's definition, markdown and run records under ``dest`` (a ``--root``)."""
    (dest / "runs").mkdir(parents=True)
    for suffix in (".toml", ".md"):
        shutil.copy(LEADERBOARDS / f"{SMALL}{suffix}", dest)
    shutil.copytree(LEADERBOARDS / "runs" / SMALL, dest / "runs" / SMALL)
    return dest


def test_wall_time_is_not_rendered(tmp_path, capsys):
    """A re-run differs from the committed record only in its wall time, which must not make the markdown stale."""
    root = copy_small_board(tmp_path / "lb")
    run = root / "runs" / SMALL / "pdg.json"
    doc = json.loads(run.read_text("utf-8"))
    doc["provenance"]["seconds"] += 123.4
    run.write_text(json.dumps(doc), "utf-8")
    assert main(["leaderboard", "check", "--root", str(root)]) == 0
    assert capsys.readouterr().out == f"{SMALL}.md: up to date\n"
    assert " s)" not in (root / f"{SMALL}.md").read_text("utf-8").split("Command:")[1].splitlines()[0]


def test_check_names_each_stale_board(tmp_path, capsys):
    root = copy_small_board(tmp_path / "lb")
    (root / f"{SMALL}.md").write_text("# old\n", "utf-8")
    assert main(["leaderboard", "check", "--root", str(root)]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{SMALL}.md: stale; run `pdg-eval leaderboard build {SMALL}`\n")


def test_recorded_command_is_reproducible():
    """The run records the command from its arguments (fixed order, defaults left out, no --root), as committed."""
    from pdg_eval.cli.leaderboard import _command

    committed = json.loads((LEADERBOARDS / "runs" / "convai2" / "pdg.json").read_text("utf-8"))["provenance"]["command"]
    parse = build_parser().parse_args
    assert _command(parse(["leaderboard", "run", "convai2", "--root", "/elsewhere", "--seed", "12345"])) == committed \
        == "pdg-eval leaderboard run convai2"
    args = parse(["leaderboard", "run", "--ci-resamples", "500", "convai2", "--root", "/elsewhere", "--resamples", "2000"])
    assert _command(args) == "pdg-eval leaderboard run convai2 --resamples 2000 --ci-resamples 500"


def _set(doc: dict, path: list, value) -> dict:
    """``doc`` with the value at ``path`` replaced."""
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


RUN = f"runs/{SMALL}/pdg.json"
TOML = f"{SMALL}.toml"
BAD_FILES = [  # (file, how it is corrupted, the one line on stderr after the file name)
    (RUN, lambda text: text[:3000], ":{json_line}: malformed JSON: {json_message} (column {json_column})"),
    (RUN, lambda text: "", ":1: malformed JSON: Expecting value (column 1)"),
    (RUN, lambda text: b"\xff\xfe", ":1: not valid UTF-8 (byte 0xff at column 1)"),
    (RUN, lambda text: "[" * 100_000, ":1: nested deeper than 64 arrays/objects (column 65)"),
    (RUN, lambda text: json.dumps(list(range(10_000))), ": run: [0, 1, 2, 3, 4, 5, ...] is not of type 'object'"),
    (RUN, lambda text: json.dumps(_set(json.loads(text), ["provenance", "systems", 2, "items"], "773")),
     ": provenance.systems.2.items: '773' is not of type 'integer'"),
    (RUN, lambda text: json.dumps(_set(json.loads(text), ["provenance", "command"], None)),
     ": provenance.command: None is not of type 'string'"),
    (RUN, lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "provenance"}),
     ": provenance: missing required field"),
    (RUN, lambda text: json.dumps(_set(json.loads(text), ["comparison", "columns"], [0])),
     ": comparison.columns.0: 0 is not of type 'object'"),
    (RUN, lambda text: json.dumps(_set(json.loads(text), ["comparison", "cells", 3, "key"], "bleu-9")),
     ": comparison: inconsistent comparison (KeyError: ('bleu:nltk_sentence_avg,smooth=none,tok=treebank', 'bleu-9'))"),
    (RUN, lambda text: json.dumps(_set(json.loads(text), ["comparison", "test_signature"], "ar")),
     ": comparison: inconsistent comparison (ValueError: dictionary update sequence element #0 has length 1; 2 is "
     "required)"),
    (RUN, lambda text: json.dumps(_set(json.loads(text), ["comparison", "cells", 0, "value"], 10 ** 400)),
     ": comparison: inconsistent comparison (OverflowError: int too large to convert to float)"),
    (RUN, lambda text: json.dumps(_set(json.loads(text), ["comparison", "systems", 0], "\ud800")),
     ":1: \\ud800 is a lone surrogate (half of a UTF-16 pair), not a character (column {surrogate})"),
    (TOML, lambda text: text.replace('presets = ["pdg", "paa", "morpheus", "clv"]',
                                     'presets = ["pdg", "paa", "morpheus", "clv"'),
     ":10: not valid TOML: Unclosed array (column 1)"),
    (TOML, lambda text: text.replace('presets = ["pdg", "paa", "morpheus", "clv"]', 'presets = "pdg"'),
     ": presets: 'pdg' is not of type 'array'"),
    (TOML, lambda text: text.replace('presets = ["pdg", "paa", "morpheus", "clv"]', 'presets = ["pdg", "nope"]'),
     ": presets: unknown preset 'nope'; choose from pdg, paa, clv, morpheus, morpheus_code, idl, pal, dhap, msp, "
     "parlai"),
    (TOML, lambda text: text.replace("first_dialogues = 100", "first_dialogues = 1979-05-27"),
     ": first_dialogues: datetime.date(1979, 5, 27) is not of type 'integer'"),
    (TOML, lambda text: text.replace("title =", "titel ="), ": title: missing required field"),
    (TOML, lambda text: text.replace('format = "jsonl"', 'format = ["jsonl"]', 1),
     ": systems.0.format: ['jsonl'] is not of type 'string'"),
]


@pytest.mark.parametrize("action", ["build", "check"])
@pytest.mark.parametrize("name, corrupt, expected", BAD_FILES, ids=range(len(BAD_FILES)))
def test_corrupt_file_is_one_line_and_leaves_the_markdown(tmp_path, capsys, action, name, corrupt, expected):
    root = copy_small_board(tmp_path / "lb")
    (root / f"{SMALL}.md").write_text("# stale\n", "utf-8")  # build would rewrite it if it got that far
    bad = corrupt((root / name).read_text("utf-8"))
    (root / name).write_bytes(bad if isinstance(bad, bytes) else bad.encode("utf-8"))
    assert main(["leaderboard", action, "--root", str(root)]) == 2
    out, err = capsys.readouterr()
    surrogate = bad.find("\\ud800") + 1 if isinstance(bad, str) else None  # its column in the written JSON
    where = {}
    if "{json_line}" in expected:  # where the standard library's parser stops (the committed record's layout decides)
        with pytest.raises(json.JSONDecodeError) as stop:
            json.loads(bad)
        where = {"json_line": stop.value.lineno, "json_message": stop.value.msg, "json_column": stop.value.colno}
    assert (out, err) == ("", f"{root / name}{expected.format(surrogate=surrogate, **where)}\n")
    assert (root / f"{SMALL}.md").read_text("utf-8") == "# stale\n"
    assert not list(root.glob(".*.tmp"))


def test_build_writes_all_boards_or_none(tmp_path, capsys):
    """convai2.md is stale, convai2_first100's run record is corrupt: build writes neither."""
    root = tmp_path / "lb"
    shutil.copytree(LEADERBOARDS, root)
    (root / "convai2.md").write_text("# stale\n", "utf-8")
    (root / RUN).write_text("{", "utf-8")
    assert main(["leaderboard", "build", "--root", str(root)]) == 2
    assert capsys.readouterr().err == f"{root / RUN}:1: malformed JSON: Expecting property name enclosed in double " \
                                      "quotes (column 2)\n"
    assert (root / "convai2.md").read_text("utf-8") == "# stale\n"
    assert not list(root.glob(".*.tmp"))


def test_missing_root(capsys, tmp_path):
    assert main(["leaderboard", "build", "--root", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith(f"pdg-eval: error: --root {tmp_path / 'nope'}: no such folder (")


# -- fuzzing `leaderboard build` with corrupt run records and board definitions ------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)


def _paths(doc, prefix=()):
    """Every key path of a decoded JSON document (the places a value can be replaced or removed)."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


@st.composite
def corrupted(draw, original: str, name: str) -> bytes:
    """``original`` (the text of file ``name``) damaged: random bytes, a random JSON value, truncated, or, for the
    run record, one value replaced by a random JSON value or removed; for the TOML, one line replaced."""
    kinds = ["bytes", "json", "truncate", "replace", "remove"] if name.endswith(".json") else \
        ["bytes", "json", "truncate", "line"]
    kind = draw(st.sampled_from(kinds))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(json_values)).encode("utf-8")
    if kind == "truncate":
        return original.encode("utf-8")[:draw(st.integers(0, len(original) - 1))]
    if kind == "line":
        lines = original.splitlines()
        k = draw(st.integers(0, len(lines) - 1))
        key = lines[k].split("=")[0] if "=" in lines[k] else ""
        lines[k] = key + draw(st.sampled_from(["= ", ""])) + (json.dumps(draw(json_values)) if draw(st.booleans())
                                                              else draw(st.text(max_size=30)))
        return "\n".join(lines).encode("utf-8")
    doc = json.loads(original)
    paths = list(_paths(doc))
    *parent, last = paths[draw(st.integers(0, len(paths) - 1))]
    target = doc
    for key in parent:
        target = target[key]
    if kind == "remove":
        del target[last]
    else:
        target[last] = draw(json_values)
    return json.dumps(doc).encode("utf-8")


@pytest.fixture(scope="module")
def small_board(tmp_path_factory) -> Path:
    return copy_small_board(tmp_path_factory.mktemp("template") / "lb")


@pytest.mark.parametrize("name", [RUN, TOML])
def test_fuzz_build_never_crashes(small_board, name):
    """Any damage to a run record or a board definition ends as exit 0, or as exit 2 with one line on stderr and
    the markdown untouched; never an exception out of main()."""
    original = (small_board / name).read_text("utf-8")
    markdown = (small_board / f"{SMALL}.md").read_bytes()

    @settings(max_examples=40, deadline=None, database=None)
    @given(bad=corrupted(original, name))
    def build_with(bad: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "lb"
            shutil.copytree(small_board, root)
            (root / name).write_bytes(bad)
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["leaderboard", "build", "--root", str(root), SMALL])
            assert code in (0, 2), err.getvalue()
            if code == 2:
                assert err.getvalue().count("\n") == 1 and err.getvalue().endswith("\n"), err.getvalue()
                assert (root / f"{SMALL}.md").read_bytes() == markdown
                assert not list(root.glob(".*.tmp"))

    build_with()


def test_render_is_deterministic_and_check_detects_staleness(tmp_path, capsys):
    root = tmp_path / "leaderboards"
    shutil.copytree(LEADERBOARDS, root)
    board = load_board("convai2", root)
    assert render(board) == render(board)
    text = board.markdown_path.read_text(encoding="utf-8")
    assert "## MEASURED by pdg-eval" in text and "## REPORTED" in text and "[test] test:ar|resamples:" in text
    assert text.index("## MEASURED") < text.index("## REPORTED")
    board.markdown_path.write_text(text.replace("PAA", "PAB", 1), encoding="utf-8")
    assert stale(board)
    board.run_path("paa").unlink()
    try:
        render(board)
    except Exception as exc:  # noqa: BLE001
        assert "leaderboard run" in str(exc)
    else:
        raise AssertionError("a missing run record must fail")


def test_unknown_board(capsys):
    assert main(["leaderboard", "build", "nope", "--root", str(LEADERBOARDS)]) == 2
    assert "no leaderboard 'nope'" in capsys.readouterr().err
