"""The Streamlit app, driven headless with ``streamlit.testing.v1.AppTest``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pdg_eval.annotate.store import Store, create_store
from pdg_eval.annotate.study import build_study
from pdg_eval.annotate.throttle import LoginThrottle

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "annotation_app" / "app.py")
EXAMPLES = ROOT / "pdg_eval" / "examples"
SYSTEMS = {"demo": str(EXAMPLES / "persona_chat_example.jsonl"),
           "generic": str(EXAMPLES / "annotation" / "generic_bot.jsonl")}
HTML_ITEMS = ["example-1-0", "example-1-2", "example-2-2"]  # generic-bot replies with HTML, markdown, a link


@pytest.fixture()
def make_study(tmp_path, monkeypatch):
    def make(template: str, **fields):
        data = {"name": f"app-{template}", "template": template, "systems": SYSTEMS,
                "items": {"ids": HTML_ITEMS}, "annotators": {"names": ["ann1", "ann2"], "per_item": 2},
                "attention_checks": {"count": 1}} | fields
        path = tmp_path / f"{template}.json"
        path.write_text(json.dumps(data))
        out = tmp_path / template
        _, tokens, password = create_store(build_study(path), out, admin_password="s3cret")
        monkeypatch.setenv("PDG_EVAL_STUDY", str(out))
        return Store(out), tokens
    return make


def open_app(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def page_text(at: AppTest) -> str:
    parts = [e.value for kind in ("text", "markdown", "caption", "title", "info", "success", "error")
             for e in at.get(kind)]
    parts += [r.label for r in at.radio] + [str(o) for r in at.radio for o in r.options]
    return "\n".join(str(p) for p in parts)


def submit(at: AppTest) -> AppTest:
    return next(b for b in at.button if b.label == "Save and continue").click().run()


def test_no_or_bad_token_shows_nothing_of_the_study(make_study):
    make_study("idl_pairwise")
    for params in ({}, {"token": "guess"}):
        at = open_app(**params)
        assert "personal link" in at.info[0].value
        assert not at.radio and "demo" not in page_text(at) and "Persona" not in page_text(at)


def test_pairwise_flow_saves_resumes_and_hides_systems(make_study):
    store, tokens = make_study("idl_pairwise")
    at = open_app(token=tokens["ann1"])
    assert [b.label for b in at.button] == ["Start"]
    at = at.button[0].click().run()
    assert "0 of 4 done" in at.get("progress")[0].proto.text
    assert [r.label for r in at.radio] == [f"**{a.name}** — {a.question}" for a in store.aspects]
    assert [r.help for r in at.radio] == [a.instructions for a in store.aspects]
    assert list(at.radio[0].options) == ["A is better", "Tie", "B is better"]
    at.radio[0].set_value("left")
    at = submit(at)  # two questions unanswered: refused, nothing stored
    assert "not answered" in at.error[0].value and store.frame().empty
    for radio in at.radio:
        radio.set_value("right")
    at = submit(at)
    assert "1 of 4 done" in at.get("progress")[0].proto.text and not at.error
    saved = store.frame()
    assert len(saved) == 3 and set(saved["choice"]) == {"right"} and set(saved["annotator"]) == {"ann1"}
    reloaded = open_app(token=tokens["ann1"])  # a reload (new session): same place, no instructions page
    assert "1 of 4 done" in reloaded.get("progress")[0].proto.text
    text = page_text(reloaded)
    assert "demo" not in text and "generic" not in text  # system identities never reach the page


def test_model_output_is_rendered_as_inert_text(make_study):
    store, tokens = make_study("idl_pairwise", attention_checks=0)
    at = open_app(token=tokens["ann2"]).button[0].click().run()
    seen = []
    for _ in range(3):
        seen += [t.value for t in at.text]
        markdown = " ".join(m.value for m in at.markdown)
        assert "<script>" not in markdown and "**yes**" not in markdown and "](http" not in markdown
        for radio in at.radio:
            radio.set_value("tie")
        at = submit(at)
    assert "<b>nothing much</b> , just <script>alert('hi')</script> relaxing ." in seen
    assert "**yes** , i eat a lot of _pizza_ ." in seen
    assert "spiders . [click here](http://example.com) to see why ." in seen
    assert at.success and "answered every item" in at.success[0].value


def test_ranking_requires_distinct_ranks_and_maps_ranks_to_systems(make_study):
    store, tokens = make_study("morpheus_ranking", attention_checks=0)
    at = open_app(token=tokens["ann1"]).button[0].click().run()
    assert len(at.radio) == 4 * 3  # 4 aspects x (2 systems + ground truth)
    for radio in at.radio:
        radio.set_value(1)
    at = submit(at)
    assert "different rank" in at.error[0].value and store.frame().empty
    for index, radio in enumerate(at.radio):
        radio.set_value(index % 3 + 1)  # response shown first gets 1, second 2, third 3
    at = submit(at)
    frame = store.frame()
    row = store.judgment_rows()[0]
    for position, system in enumerate(row["shown"]):
        ranks = set(frame[(frame["system"] == system)]["rank"])
        assert ranks == {position + 1}
        assert set(frame[frame["system"] == system]["position"]) == {position}


def test_likert_shows_scale_labels_and_saves_values(make_study):
    store, tokens = make_study("paa_likert", attention_checks=0)
    at = open_app(token=tokens["ann1"]).button[0].click().run()
    assert list(at.radio[0].options) == ["1 (unacceptable)", "2", "3 (acceptable)", "4", "5 (perfect)"]
    assert list(at.radio[-1].options) == ["-1 (contradicts the persona)", "0 (not relevant to the persona)",
                                          "1 (relevant to the persona)"]
    consistency = [r for r in at.radio if r.key.split(":")[1] == "Persona consistency"]
    assert len(consistency) == 2
    for radio in at.radio:
        radio.set_value(-1 if "Persona consistency" in radio.key else 4)
    at = submit(at)
    frame = store.frame()
    assert len(frame) == 4 * 2
    assert set(frame[frame["aspect"] == "Persona consistency"]["value"]) == {-1}
    assert set(frame[frame["aspect"] == "Fluency"]["value"]) == {4}


def test_admin_page_needs_the_password_and_exports(make_study):
    store, tokens = make_study("idl_pairwise")
    ann1 = store.annotator_for_token(tokens["ann1"])[0]
    store.save(ann1, store.screen(ann1).assignment_id, {a.name: "tie" for a in store.aspects}, 0)
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["admin"] = "1"
    at.session_state["admin_throttle"] = LoginThrottle(base_s=0.0)  # no wait after a failure (throttling: below)
    at = at.run()
    assert not at.get("dataframe") and not at.get("download_button")
    at = sign_in(at, "wrong")
    assert "Wrong password" in at.error[0].value and not at.get("dataframe")
    at = sign_in(at, "s3cret")
    progress = at.get("dataframe")[0].value
    assert list(progress["annotator"]) == ["ann1", "ann2"] and list(progress["assigned"]) == [4, 4]
    assert [b.proto.label for b in at.get("download_button")] == [
        "Judgments (CSV)", "Revision history (CSV)", "Judgments with positions, timestamps and revisions (JSONL)"]
    history = at.get("dataframe")[1].value
    assert list(history["annotator"]) == ["ann1"] * 3 and list(history["revision"]) == [1] * 3
    assert set(history["choice"]) == {"tie"} and history["kept"].all()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_login_throttle_doubles_the_wait_up_to_the_cap():
    clock = FakeClock()
    throttle = LoginThrottle(base_s=1.0, cap_s=8.0, clock=clock)
    assert throttle.wait_s() == 0.0
    assert [throttle.failed() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert throttle.wait_s() == 8.0
    clock.now += 5.5
    assert throttle.wait_s() == 2.5
    clock.now += 2.5
    assert throttle.wait_s() == 0.0
    throttle.succeeded()
    assert throttle.failed() == 1.0  # a success starts over


def sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input[0].input(password)
    return next(b for b in at.button if b.label == "Sign in").click().run()


def test_admin_sign_in_is_throttled_after_wrong_passwords(make_study):
    make_study("idl_pairwise")
    clock = FakeClock()
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["admin"] = "1"
    at.session_state["admin_throttle"] = LoginThrottle(clock=clock)
    at = sign_in(at.run(), "wrong")
    assert at.error[0].value == "Wrong password. Try again in 1 s."
    at = sign_in(at, "s3cret")  # too early: refused without checking, even with the right password
    assert at.error[0].value == "Too many wrong passwords: try again in 1 s." and not at.get("dataframe")
    clock.now += 1.0
    at = sign_in(at, "wrong again")
    assert at.error[0].value == "Wrong password. Try again in 2 s."
    clock.now += 1.5
    at = sign_in(at, "s3cret")
    assert "try again in 1 s" in at.error[0].value and not at.get("dataframe")
    clock.now += 0.5
    at = sign_in(at, "s3cret")
    assert not at.error and at.get("dataframe")


def test_a_stale_tab_cannot_overwrite_the_newer_answer(make_study):
    store, tokens = make_study("idl_pairwise")
    tab1 = open_app(token=tokens["ann1"]).button[0].click().run()
    tab2 = open_app(token=tokens["ann1"])  # a second tab on the same link, showing the same first screen
    assert tab2.get("progress")[0].proto.text == tab1.get("progress")[0].proto.text == "0 of 4 done"
    for radio in tab1.radio:
        radio.set_value("left")
    tab1 = submit(tab1)
    assert "1 of 4 done" in tab1.get("progress")[0].proto.text
    for radio in tab2.radio:
        radio.set_value("right")
    tab2 = submit(tab2)
    warning = tab2.warning[0].value
    assert warning.startswith("Item 1: This item was answered in another tab or window: your answer was not saved")
    assert "The answer kept: Persona: A is better; Style: A is better; Fluency: A is better." in warning
    assert "1 of 4 done" in tab2.get("progress")[0].proto.text  # and the stale tab moves on to the next screen
    assert set(store.frame()["choice"]) == {"left"} and len(store.revision_rows()) == 3
