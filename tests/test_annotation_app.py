"""The Streamlit app, driven headless with ``streamlit.testing.v1.AppTest``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pdg_eval.annotate.store import Store, create_store
from pdg_eval.annotate.study import build_study

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
    assert [r.label for r in at.radio] == ["Persona", "Style", "Fluency"]
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
    at = open_app(admin="1")
    assert not at.get("dataframe") and not at.get("download_button")
    at.text_input[0].input("wrong")
    at = next(b for b in at.button if b.label == "Sign in").click().run()
    assert "Wrong password" in at.error[0].value and not at.get("dataframe")
    at.text_input[0].input("s3cret")
    at = next(b for b in at.button if b.label == "Sign in").click().run()
    progress = at.get("dataframe")[0].value
    assert list(progress["annotator"]) == ["ann1", "ann2"] and list(progress["assigned"]) == [4, 4]
    assert len(at.get("download_button")) == 2
