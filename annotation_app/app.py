"""pdg-eval annotation app (Streamlit). Started by ``pdg-eval annotate serve STUDY_DIR``.

Annotators open ``/?token=...`` (their personal link); the admin page is ``/?admin=1``. Every screen is saved to the
study's SQLite store when submitted, and the next screen is always the first unfinished one, so a reload, a closed
tab or a server restart resumes where the annotator was. Model outputs are shown with ``st.text`` (no markdown, no
HTML), and system names never reach an annotator's page.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import streamlit as st

from pdg_eval.annotate.store import Screen, Store
from pdg_eval.errors import ConfigError

PAIRWISE_OPTIONS = {"left": "A is better", "tie": "Tie", "right": "B is better"}


def study_dir() -> str:
    """From ``PDG_EVAL_STUDY``, else from ``streamlit run app.py -- STUDY_DIR``."""
    path = os.environ.get("PDG_EVAL_STUDY") or (sys.argv[1] if len(sys.argv) > 1 else None)
    if not path:
        st.error("No study given: start the app with `pdg-eval annotate serve STUDY_DIR`.")
        st.stop()
    return path


@st.cache_resource
def open_store(path: str) -> Store:
    return Store(path)


def position_name(task: str, position: int) -> str:
    return ("A", "B")[position] if task == "pairwise" else str(position + 1)


def show_dialogue(screen: Screen) -> None:
    unit = screen.unit
    if unit.persona:
        with st.container(border=True):
            st.caption("The speaker's persona")
            for sentence in unit.persona:
                st.text(sentence)
    with st.container(border=True):
        st.caption("The conversation so far")
        n = len(unit.context)
        for index, turn in enumerate(unit.context):  # the last turn is the partner's
            speaker = "Partner" if (n - 1 - index) % 2 == 0 else "Speaker"
            st.text(f"{speaker}: {turn}")


def widget_key(screen: Screen, aspect: str, position: int | None = None) -> str:
    """Session-state key of one answer widget (unique per assignment, so a new screen starts blank)."""
    key = f"s{screen.assignment_id}:{aspect}"
    return key if position is None else f"{key}:{position}"


def show_responses(store: Store, screen: Screen) -> None:
    responses = screen.responses_shown
    columns = st.columns(len(responses)) if store.task == "pairwise" else [st.container() for _ in responses]
    for position, (column, text) in enumerate(zip(columns, responses)):
        with column, st.container(border=True):
            st.caption(f"Response {position_name(store.task, position)}")
            if text.strip():
                st.text(text)
            else:
                st.caption("(empty reply)")


def ask(store: Store, screen: Screen) -> None:
    """The screen's questions (their answers live in session state under :func:`widget_key`)."""
    n_shown = len(screen.shown)
    for aspect in store.aspects:
        st.markdown(f"**{aspect.name}** — {aspect.question}")
        if aspect.instructions:
            st.caption(aspect.instructions)
        if store.task == "pairwise":
            st.radio(aspect.name, list(PAIRWISE_OPTIONS), index=None, horizontal=True,
                     format_func=PAIRWISE_OPTIONS.get, key=widget_key(screen, aspect.name),
                     label_visibility="collapsed")
            continue
        if store.task == "ranking":
            options: list[int] = list(range(1, n_shown + 1))
            label = "Rank of response {} (1 = best)"
            fmt = str
        else:
            options = list(aspect.scale)
            label = "Response {}"
            fmt = (lambda v, labels=aspect.labels: f"{v} ({labels[v]})" if v in labels else str(v))
        for p in range(n_shown):
            st.radio(label.format(position_name(store.task, p)), options, index=None, horizontal=True,
                     format_func=fmt, key=widget_key(screen, aspect.name, p))


def collected(store: Store, screen: Screen) -> dict[str, Any]:
    """The answers of the screen's widgets, by aspect (None where unanswered)."""
    state = st.session_state
    if store.task == "pairwise":
        return {a.name: state.get(widget_key(screen, a.name)) for a in store.aspects}
    return {a.name: [state.get(widget_key(screen, a.name, p)) for p in range(len(screen.shown))]
            for a in store.aspects}


def complete(task: str, answers: dict[str, Any]) -> str | None:
    """Why the answers cannot be saved yet, or None."""
    for aspect, value in answers.items():
        if value is None or (isinstance(value, list) and any(v is None for v in value)):
            return f"Please answer every question ({aspect} is not answered yet)."
        if task == "ranking" and len(set(value)) != len(value):
            return f"{aspect}: give each response a different rank."
    return None


def save_screen(store: Store, annotator_id: int, screen: Screen) -> None:
    """Form callback: runs before the script, so the rerun that follows already shows the next screen
    (one script run per save instead of two)."""
    answers = collected(store, screen)
    problem = complete(store.task, answers)
    if problem is None:
        try:
            store.save(annotator_id, screen.assignment_id, answers)
        except ConfigError as exc:
            problem = str(exc)
    st.session_state["problem"] = problem
    st.session_state["saved"] = None if problem else screen.seq + 1


def annotator_page(store: Store, annotator_id: int, name: str) -> None:
    st.title(store.title)
    if not store.has_started(annotator_id):
        st.markdown(store.instructions)
        for aspect in store.aspects:
            st.markdown(f"- **{aspect.name}**: {aspect.question} {aspect.instructions}")
        if st.button("Start", type="primary"):
            store.start(annotator_id)
            st.rerun()
        return
    with st.sidebar:
        st.caption(f"Signed in as {name}")
        with st.expander("Instructions"):
            st.markdown(store.instructions)
    screen = store.screen(annotator_id)
    if screen is None:
        st.progress(1.0, text="All done")
        st.success("You have answered every item. Thank you! You can close this page.")
        return
    st.progress(screen.done / screen.total, text=f"{screen.done} of {screen.total} done")
    saved = st.session_state.get("saved")
    if saved:
        st.caption(f"Saved item {saved}.")
    show_dialogue(screen)
    with st.form(f"form-{screen.assignment_id}"):
        show_responses(store, screen)
        ask(store, screen)
        st.form_submit_button("Save and continue", type="primary", on_click=save_screen,
                              args=(store, annotator_id, screen))
    problem = st.session_state.pop("problem", None)
    if problem:
        st.error(problem)


def admin_page(store: Store) -> None:
    st.title(f"{store.title} — admin")
    if not st.session_state.get("admin"):
        password = st.text_input("Admin password", type="password")
        if st.button("Sign in"):
            if store.check_admin(password):
                st.session_state["admin"] = True
                st.rerun()
            st.error("Wrong password.")
        return
    progress = store.progress()
    done, assigned = int(progress["done"].sum()), int(progress["assigned"].sum())
    st.metric("Screens done", f"{done} / {assigned}")
    st.dataframe(progress, hide_index=True)
    frame = store.frame()
    st.download_button("Judgments (CSV)", frame.to_csv(index=False), file_name=f"{store.meta['name']}.csv",
                       mime="text/csv")
    st.download_button("Judgments with positions and timestamps (JSONL)", store.export_jsonl(),
                       file_name=f"{store.meta['name']}.jsonl", mime="application/jsonl")


def main() -> None:
    st.set_page_config(page_title="pdg-eval annotation", layout="centered")
    store = open_store(study_dir())
    params = st.query_params
    if "admin" in params:
        admin_page(store)
        return
    found = store.annotator_for_token(params.get("token"))
    if found is None:
        st.title("pdg-eval annotation")
        st.info("Open the personal link you were given to start annotating.")
        return
    annotator_page(store, *found)


main()
