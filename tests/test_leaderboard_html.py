"""The boards' HTML pages in the real browser: self-contained, columns sort on click, the signature is a header's
tooltip, the papers' REPORTED numbers stand apart; `leaderboard check` covers the pages once built."""

from __future__ import annotations

import shutil
from pathlib import Path

from pdg_eval.cli.main import main
from pdg_eval.leaderboard import load_board, render_html

from tests.browser import browser, needs_chromium  # noqa: F401 (browser: a fixture)

LEADERBOARDS = Path(__file__).resolve().parent.parent / "leaderboards"

pytestmark = needs_chromium


def column_values(table, column: int) -> list[float]:
    return [float(v) for v in table.locator(f"tbody tr td:nth-child({column + 1})").evaluate_all(
        "cells => cells.map(c => c.dataset.value)")]


def test_sorting_a_column_reorders_the_rows(browser, tmp_path):
    board = load_board("convai2", LEADERBOARDS)
    page_path = tmp_path / "convai2.html"
    page_path.write_text(render_html(board), "utf-8")
    assert "<script src" not in page_path.read_text("utf-8") and "<link" not in page_path.read_text("utf-8")
    page = browser.new_page()
    page.goto(page_path.as_uri())
    headline = page.locator("table[data-title=headline]")
    header = headline.locator("th", has_text="BLEU-4")
    assert header.get_attribute("title").startswith("bleu:sacrebleu|tok:13a|")
    column = headline.locator("th").all_inner_texts().index(header.inner_text())
    before = headline.locator("tbody tr td:first-child").all_inner_texts()
    header.click()
    descending = column_values(headline, column)
    assert descending == sorted(descending, reverse=True)
    assert headline.locator("tbody tr td:first-child").all_inner_texts() != before
    header.click()
    assert column_values(headline, column) == sorted(descending)
    first = headline.locator("tbody tr td").nth(column)
    assert "95% CI [" in first.get_attribute("title")
    reported = page.locator("section.reported")
    assert reported.count() == 1 and "REPORTED" in reported.locator("h2").inner_text()
    assert reported.locator("tr.reported").count() > 10
    page.close()


def test_check_covers_the_html_page_once_built(tmp_path, capsys):
    root = tmp_path / "boards"
    shutil.copytree(LEADERBOARDS, root)
    assert main(["leaderboard", "build", "--html", "--root", str(root), "convai2_first100"]) == 0
    assert main(["leaderboard", "check", "--root", str(root)]) == 0
    page = root / "convai2_first100.html"
    page.write_text(page.read_text("utf-8").replace("Headline", "Headlines"), "utf-8")
    capsys.readouterr()
    assert main(["leaderboard", "check", "--root", str(root)]) == 1
    assert "convai2_first100.html: stale" in capsys.readouterr().err
    assert main(["leaderboard", "build", "--root", str(root)]) == 0  # a built page is kept up to date
    assert main(["leaderboard", "check", "--root", str(root)]) == 0
