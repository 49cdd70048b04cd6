"""pdg-eval annotation app (Streamlit). Started by ``pdg-eval annotate serve STUDY_DIR``.

Annotators open ``/?token=...`` (their personal link); the admin page is ``/?admin=1``. Every screen is saved to the
study's SQLite store when submitted, and the next screen is always the first unfinished one, so a reload, a closed
tab or a server restart resumes where the annotator was. A save names the revision its screen was rendered from, so
a stale tab on the same link is refused instead of overwriting a newer answer. Model outputs are shown with
``st.text`` (no markdown, no HTML), and system names never reach an annotator's page. Keys 1 / 2 / 3 answer the first
open pairwise question (a small script clicks the radio option; ``st.html`` runs it in the page, not in an iframe).
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import streamlit as st

from pdg_eval.annotate.store import Screen, StaleScreen, Store
from pdg_eval.annotate.throttle import LoginThrottle
from pdg_eval.errors import ConfigError

PAIRWISE_OPTIONS = {"left": "A is better", "tie": "Tie", "right": "B is better"}
#: less padding above the page, so that a screen's questions fit a 1280×800 window
COMPACT_CSS = "<style>[data-testid='stMainBlockContainer'] {padding-top: 3.5rem; padding-bottom: 2rem}</style>"
#: keys 1/2/3 click option 1/2/3 of the first unanswered question of the form (once per page: a global flag)
PAIRWISE_KEYS_JS = """<script>
if (!window.pdgPairwiseKeys) {
  window.pdgPairwiseKeys = true;
  document.addEventListener("keydown", (event) => {
    const option = {"1": 0, "2": 1, "3": 2}[event.key];
    const typing = event.target.closest && event.target.closest("input:not([type=radio]), textarea, [contenteditable]");
    if (option === undefined || typing || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
    const groups = [...document.querySelectorAll("[data-testid='stForm'] [role='radiogroup']")];
    const open = groups.find((group) => !group.querySelector("input:checked"));
    const label = open && open.querySelectorAll("label")[option];
    if (label) { label.click(); event.preventDefault(); }
  });
}
</script>"""


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
    """Persona and context, one text block each (compact: no gap between lines)."""
    unit = screen.unit
    if unit.persona:
        with st.container(border=True):
            st.caption("The speaker's persona")
            st.text("\n".join(unit.persona))
    with st.container(border=True):
        st.caption("The conversation so far")
        n = len(unit.context)  # the last turn is the partner's
        st.text("\n".join(f"{'Partner' if (n - 1 - index) % 2 == 0 else 'Speaker'}: {turn}"
                          for index, turn in enumerate(unit.context)))


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
    if store.task == "pairwise":
        st.caption("Keys 1 / 2 / 3 answer the first open question: A is better / Tie / B is better.")
    for aspect in store.aspects:
        question = f"**{aspect.name}** — {aspect.question}"
        if store.task == "pairwise":
            st.radio(question, list(PAIRWISE_OPTIONS), index=None, horizontal=True, format_func=PAIRWISE_OPTIONS.get,
                     key=widget_key(screen, aspect.name), help=aspect.instructions or None)
            continue
        st.markdown(question, help=aspect.instructions or None)
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


def describe(store: Store, screen: Screen, answers: dict[str, Any]) -> str:
    """Stored answers in the words of the screen (A/B or response numbers as this annotator saw them)."""
    parts = []
    for aspect in store.aspects:
        value = answers.get(aspect.name)
        if store.task == "pairwise":
            parts.append(f"{aspect.name}: {PAIRWISE_OPTIONS.get(value, value)}")
        else:
            what = "rank" if store.task == "ranking" else "rating"
            parts.append(f"{aspect.name}: " + ", ".join(
                f"response {position_name(store.task, p)} {what} {v}" for p, v in enumerate(value or [])))
    return "; ".join(parts)


def save_screen(store: Store, annotator_id: int, screen: Screen) -> None:
    """Form callback: runs before the script, so the rerun that follows already shows the next screen
    (one script run per save instead of two). The save is based on the revision the screen was rendered from."""
    answers = collected(store, screen)
    problem = complete(store.task, answers)
    if problem is None:
        try:
            store.save(annotator_id, screen.assignment_id, answers, screen.revision)
        except StaleScreen as exc:
            st.session_state["conflict"] = (f"Item {screen.seq + 1}: {exc} The answer kept: "
                                            f"{describe(store, screen, exc.answers)}.")
            st.session_state["saved"] = None
            return
        except ConfigError as exc:
            problem = str(exc)
    st.session_state["problem"] = problem
    st.session_state["saved"] = None if problem else screen.seq + 1


def annotator_page(store: Store, annotator_id: int, name: str) -> None:
    if not store.has_started(annotator_id):
        st.title(store.title)
        st.markdown(store.instructions)
        for aspect in store.aspects:
            st.markdown(f"- **{aspect.name}**: {aspect.question} {aspect.instructions}")
        if st.button("Start", type="primary"):
            store.start(annotator_id)
            st.rerun()
        return
    st.html(COMPACT_CSS)
    st.markdown(f"#### {store.title}")
    conflict = st.session_state.pop("conflict", None)
    if conflict:
        st.warning(conflict)
    screen = store.screen(annotator_id)
    if screen is None:
        st.progress(1.0, text="All done")
        st.success("You have answered every item. Thank you! You can close this page.")
        return
    st.progress(screen.done / screen.total, text=f"{screen.done} of {screen.total} done")
    dialogue, questions = st.columns([2, 3], gap="medium")
    with dialogue:
        show_dialogue(screen)
        with st.expander("Instructions"):
            st.markdown(store.instructions)
        saved = st.session_state.get("saved")
        st.caption(f"Signed in as {name}" + (f" · saved item {saved}" if saved else ""))
    with questions:
        with st.form(f"form-{screen.assignment_id}"):
            show_responses(store, screen)
            ask(store, screen)
            st.form_submit_button("Save and continue", type="primary", on_click=save_screen,
                                  args=(store, annotator_id, screen))
        problem = st.session_state.pop("problem", None)
        if problem:
            st.error(problem)
    if store.task == "pairwise":
        st.html(PAIRWISE_KEYS_JS, unsafe_allow_javascript=True)


def sign_in(store: Store, password: str) -> str | None:
    """Check the admin password unless this session must still wait after failed attempts; the error, or None."""
    throttle = st.session_state.setdefault("admin_throttle", LoginThrottle())
    wait = throttle.wait_s()
    if wait > 0:
        return f"Too many wrong passwords: try again in {math.ceil(wait)} s."
    if not store.check_admin(password):
        return f"Wrong password. Try again in {throttle.failed():g} s."
    throttle.succeeded()
    st.session_state["admin"] = True
    return None


def admin_page(store: Store) -> None:
    st.title(f"{store.title} — admin")
    if not st.session_state.get("admin"):
        password = st.text_input("Admin password", type="password")
        if st.button("Sign in"):
            problem = sign_in(store, password)
            if problem is None:
                st.rerun()
            st.error(problem)
        return
    progress = store.progress()
    done, assigned = int(progress["done"].sum()), int(progress["assigned"].sum())
    st.metric("Screens done", f"{done} / {assigned}")
    st.dataframe(progress, hide_index=True)
    name = store.meta["name"]
    st.download_button("Judgments (CSV)", store.frame().to_csv(index=False), file_name=f"{name}.csv",
                       mime="text/csv")
    history = store.history_frame()
    st.download_button("Revision history (CSV)", history.to_csv(index=False), file_name=f"{name}.revisions.csv",
                       mime="text/csv")
    st.download_button("Judgments with positions, timestamps and revisions (JSONL)", store.export_jsonl(),
                       file_name=f"{name}.jsonl", mime="application/jsonl")
    st.subheader("Revision history")
    st.caption("Every saved answer (who, when, revision number), newest first; `kept` marks the stored one.")
    st.dataframe(history.sort_values("saved", ascending=False, kind="stable"), hide_index=True)


def main() -> None:
    st.set_page_config(page_title="pdg-eval annotation", layout="wide")
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
