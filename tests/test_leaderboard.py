"""Leaderboards: the committed markdown equals what `pdg-eval leaderboard build` renders from the committed records
(CI runs this check), rendering is byte-identical on re-run, and stale / missing inputs fail clearly."""

from __future__ import annotations

import shutil

from pdg_eval.cli.main import main
from pdg_eval.leaderboard import LEADERBOARDS, board_names, load_board, render, stale


def test_committed_leaderboards_are_fresh(capsys):
    assert board_names(), "no leaderboard definitions"
    assert main(["leaderboard", "check"]) == 0, capsys.readouterr().err


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
    assert main(["leaderboard", "build", "nope"]) == 2
    assert "no leaderboard 'nope'" in capsys.readouterr().err
