"""A real browser (headless Debian Chromium driven by Playwright) completes a pairwise study with two annotators,
reloading mid-study, and a ranking study, against the real ``pdg-eval annotate serve`` server.

Chromium comes from Debian (``apt-get install chromium chromium-driver``, done by ``.ci/run``); Playwright is told
to use ``/usr/bin/chromium`` and never downloads a browser.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Iterator


from pdg_eval.annotate.server import free_port, start_server
from pdg_eval.annotate.store import Store, create_store
from pdg_eval.annotate.study import build_study

from tests.browser import TIMEOUT_MS, browser, needs_chromium, sync_api  # noqa: F401 (browser: a fixture)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "pdg_eval" / "examples"
SYSTEMS = {"demo": str(EXAMPLES / "persona_chat_example.jsonl"),
           "generic": str(EXAMPLES / "annotation" / "generic_bot.jsonl")}
ITEMS = ["example-0-0", "example-1-0", "example-1-2", "example-2-2"]
pytestmark = needs_chromium


@contextlib.contextmanager
def serve(tmp_path: Path, template: str, annotators: list[str]) -> Iterator[tuple[Store, dict, str]]:
    """A study of ``template`` served by the real app: (store, tokens, base URL); the server is killed afterwards."""
    data = {"name": f"browser-{template}", "template": template, "systems": SYSTEMS, "items": {"ids": ITEMS},
            "annotators": {"names": annotators, "per_item": len(annotators)}, "attention_checks": {"count": 1}}
    path = tmp_path / f"{template}.json"
    path.write_text(json.dumps(data))
    out = tmp_path / template
    _, tokens, _ = create_store(build_study(path), out)
    port = free_port()
    server = start_server(out, port, log=tmp_path / "server.log")
    try:
        yield Store(out), tokens, f"http://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()


def progress(page, done: int, total: int) -> None:
    page.get_by_text(f"{done} of {total} done" if done < total else "All done").wait_for(timeout=TIMEOUT_MS)


def settled(page) -> None:
    """Wait until the app's script run has finished, so no element of the previous screen is still on the page."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=TIMEOUT_MS)
    sync_api.expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=TIMEOUT_MS)


def body(page, groups: int | None = None) -> str:
    """The page's text, once the script run has settled; with ``groups``, once the screen's form (that many
    radio groups) has rendered."""
    settled(page)
    if groups is not None:
        sync_api.expect(page.get_by_role("radiogroup")).to_have_count(groups, timeout=TIMEOUT_MS)
    return page.locator("body").inner_text()


def answer_pairwise(page, plan: list) -> None:
    """Choose per question: A for an attention check that asks for A, B if it asks for B, else cycle."""
    text = body(page, groups=3)
    check = re.search(r"choose response ([AB])", text)
    labels = ["A is better", "Tie", "B is better"]
    groups = page.get_by_role("radiogroup")
    choices = []
    for index in range(groups.count()):
        label = f"{check.group(1)} is better" if check else labels[(len(plan) + index) % 3]
        groups.nth(index).get_by_text(label, exact=True).click()
        choices.append({"A is better": "left", "Tie": "tie", "B is better": "right"}[label])
    plan.append(choices)
    page.get_by_role("button", name="Save and continue").click()


def test_pairwise_study_two_annotators_with_reload(browser, tmp_path):
    dialogs = []
    with serve(tmp_path, "idl_pairwise", ["ann1", "ann2"]) as (store, tokens, url):
        plans = {}
        for name in ("ann1", "ann2"):
            context = browser.new_context()
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{url}/?token={tokens[name]}")
            page.get_by_role("button", name="Start").click()
            total = 5  # 4 items + 1 attention check
            progress(page, 0, total)
            plan: list = []
            for done in range(total):
                text = body(page, groups=3)
                assert "demo" not in text and "generic" not in text
                if "nothing much" in text:  # model output with HTML: shown literally, never as markup
                    assert "<b>nothing much</b> , just <script>alert('hi')</script> relaxing ." in text
                    assert page.locator("b", has_text="nothing much").count() == 0
                if "spiders" in text:
                    assert "[click here](http://example.com)" in text and page.locator("a", has_text="click here").count() == 0
                answer_pairwise(page, plan)
                progress(page, done + 1, total)
                if name == "ann1" and done == 1:  # reload mid-study: resume at the third screen
                    page.reload()
                    progress(page, 2, total)
            assert "answered every item" in body(page)
            plans[name] = plan
            context.close()
        assert not dialogs  # no script ran
        rows = store.judgment_rows()
        assert len(rows) == 2 * 5 * 3
        for name, plan in plans.items():
            mine = sorted((r for r in rows if r["annotator"] == name), key=lambda r: r["seq"])
            aspects = [a.name for a in store.aspects]
            stored = [[next(r["answer"] for r in mine if r["seq"] == seq and r["aspect"] == a) for a in aspects]
                      for seq in range(5)]
            assert stored == plan  # exactly what was clicked, in order, nothing lost or doubled
            checks = [r for r in mine if r["is_check"]]
            assert checks and all(r["check_passed"] for r in checks)


def test_ranking_study_in_the_browser(browser, tmp_path):
    with serve(tmp_path, "morpheus_ranking", ["ann1"]) as (store, tokens, url):
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{url}/?token={tokens['ann1']}")
        page.get_by_role("button", name="Start").click()
        total = 5
        progress(page, 0, total)
        for done in range(total):
            text = body(page, groups=4 * 3)
            groups = page.get_by_role("radiogroup")
            checked = "Rank this response first" in text
            for index in range(groups.count()):
                position = index % 3
                rank = position + 1  # the response shown first is ranked best, and so on
                groups.nth(index).get_by_text(str(rank), exact=True).click()
            page.get_by_role("button", name="Save and continue").click()
            progress(page, done + 1, total)
            if checked:
                assert store.judgment_rows()[-1]["is_check"]
        frame = store.frame()
        assert len(frame) == 5 * 4 * 3
        assert (frame["rank"] == frame["position"] + 1).all()  # ranks stored by system, positions shown kept
        real = frame[~frame["is_check"]]
        assert set(real["system"]) == {"demo", "generic", "Ground truth"}
        page.close()


CHECKED_JS = """() => [...document.querySelectorAll("[data-testid='stForm'] [role='radiogroup']")].map((group) => {
  const input = group.querySelector("input:checked");
  return input ? input.closest("label").innerText.trim() : null;
})"""


def test_first_screen_fits_1280x800_and_keys_1_2_3_answer(browser, tmp_path):
    with serve(tmp_path, "idl_pairwise", ["ann1"]) as (store, tokens, url):
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{url}/?token={tokens['ann1']}")
        page.get_by_role("button", name="Start").click()
        progress(page, 0, 5)
        body(page, groups=3)
        controls = [page.get_by_role("radiogroup").nth(k) for k in range(3)]
        controls.append(page.get_by_role("button", name="Save and continue"))
        assert page.evaluate("window.scrollY") == 0
        for control in controls:  # every answer control and the save button, without scrolling
            box = control.bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= 800, box
        page.wait_for_function("window.pdgPairwiseKeys === true")
        assert page.evaluate(CHECKED_JS) == [None, None, None]
        for key, expected in (("1", ["A is better", None, None]), ("2", ["A is better", "Tie", None]),
                              ("3", ["A is better", "Tie", "B is better"])):
            page.keyboard.press(key)
            answered = page.get_by_role("radiogroup").nth(int(key) - 1).locator("input:checked")
            sync_api.expect(answered).to_have_count(1)
            assert page.evaluate(CHECKED_JS) == expected
        page.keyboard.press("1")  # every question answered: nothing changes
        assert page.evaluate(CHECKED_JS) == ["A is better", "Tie", "B is better"]
        page.get_by_role("button", name="Save and continue").click()
        progress(page, 1, 5)
        assert {r["aspect"]: r["answer"] for r in store.judgment_rows()} == {"Persona": "left", "Style": "tie",
                                                                             "Fluency": "right"}
        page.close()


def test_a_stale_tab_is_refused_and_the_first_answer_kept(browser, tmp_path):
    with serve(tmp_path, "idl_pairwise", ["ann1"]) as (store, tokens, url):
        context = browser.new_context()
        first, second = context.new_page(), context.new_page()
        for page in (first, second):
            page.set_default_timeout(TIMEOUT_MS)
        first.goto(f"{url}/?token={tokens['ann1']}")
        first.get_by_role("button", name="Start").click()
        progress(first, 0, 5)
        second.goto(f"{url}/?token={tokens['ann1']}")  # the same link in a second tab: the same first screen
        progress(second, 0, 5)
        for page, label in ((first, "A is better"), (second, "B is better")):
            groups = page.get_by_role("radiogroup")
            body(page, groups=3)
            for index in range(3):
                groups.nth(index).get_by_text(label, exact=True).click()
        first.get_by_role("button", name="Save and continue").click()
        progress(first, 1, 5)
        second.get_by_role("button", name="Save and continue").click()  # the stale tab saves the same item
        warning = second.get_by_text("This item was answered in another tab or window")
        warning.wait_for()
        assert "your answer was not saved" in warning.inner_text()
        assert "The answer kept: Persona: A is better; Style: A is better; Fluency: A is better." in body(second)
        rows = store.judgment_rows()
        assert [(r["seq"], r["answer"], r["revision"]) for r in rows] == [(0, "left", 1)] * 3  # page 1's answer
        assert len(store.revision_rows()) == 3
        context.close()
