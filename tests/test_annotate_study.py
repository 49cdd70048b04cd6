"""Study files, assignment and the SQLite store: determinism, balance, idempotent saves, isolation, bad input."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from pdg_eval.annotate.store import (DB_NAME, StaleScreen, Store, create_store, hash_password, token_digest,
                                     verify_password)
from pdg_eval.annotate.study import GOLD_NAME, TEMPLATES, build_study, load_definition, template_path
from pdg_eval.cli.main import main
from pdg_eval.errors import ConfigError, InputError

EXAMPLES = Path(__file__).resolve().parent.parent / "pdg_eval" / "examples"
DEMO = EXAMPLES / "persona_chat_example.jsonl"
GENERIC = EXAMPLES / "annotation" / "generic_bot.jsonl"


def write_study(tmp_path: Path, **fields) -> Path:
    data = {"name": "t", "template": "idl_pairwise", "systems": {"demo": str(DEMO), "generic": str(GENERIC)},
            "items": {"n": 6, "seed": 3}, "annotators": {"names": ["a", "b", "c"], "per_item": 2},
            "attention_checks": {"count": 1}} | fields
    path = tmp_path / "study.yaml"
    path.write_text(json.dumps(data))  # JSON is valid YAML
    return path


def answer_all(store: Store, annotator_id: int, choose) -> int:
    saved = 0
    while (screen := store.screen(annotator_id)) is not None:
        store.save(annotator_id, screen.assignment_id, {a.name: choose(store, screen, a) for a in store.aspects},
                   screen.revision)
        saved += 1
    return saved


def pick_left(store, screen, aspect):
    n = len(screen.shown)
    if store.task == "pairwise":
        return "left"
    return list(range(1, n + 1)) if store.task == "ranking" else [aspect.scale[-1]] * n


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_load_and_build(tmp_path, template):
    study = build_study(write_study(tmp_path, template=template))
    definition = load_definition(template_path(template))
    assert [a.name for a in study.aspects] == [a["name"] for a in definition["aspects"]]
    assert study.task == definition["task"]
    if template == "morpheus_ranking":
        assert all(u.systems[-1] == GOLD_NAME for u in study.units if not u.is_check)
        assert len(study.aspects) == 4
    if template == "paa_likert":
        scales = {a.name: a.scale for a in study.aspects}
        assert scales["Fluency"] == (1, 2, 3, 4, 5) and scales["Persona consistency"] == (-1, 0, 1)


def test_assignment_is_balanced_deterministic_and_randomised(tmp_path):
    path = write_study(tmp_path, items={"n": 12, "seed": 3}, annotators={"count": 4, "per_item": 3})
    first, second = build_study(path), build_study(path)
    assert first.to_json() == second.to_json()
    real = [a for a in first.assignments if not a.unit.startswith("check-")]
    per_unit = Counter(a.unit for a in real)
    assert set(per_unit.values()) == {3} and len(per_unit) == 12
    load = Counter(a.annotator for a in real)
    assert set(load.values()) == {9}  # 12 units x 3 / 4 annotators
    flips = Counter(a.shown for a in real)
    assert flips[(0, 1)] > 0 and flips[(1, 0)] > 0  # both A/B orders occur
    changed = build_study(write_study(tmp_path, items={"n": 12, "seed": 3}, annotators={"count": 4, "per_item": 3},
                                      seed=99))
    assert [a.shown for a in changed.assignments] != [a.shown for a in first.assignments]


def test_pairs_all_and_baseline(tmp_path):
    third = tmp_path / "third.jsonl"
    third.write_text(GENERIC.read_text().replace('"generic-bot"', '"third"'))
    systems = {"demo": str(DEMO), "generic": str(GENERIC), "third": str(third)}
    all_pairs = build_study(write_study(tmp_path, systems=systems, attention_checks=0))
    assert len(all_pairs.units) == 6 * 3
    baseline = build_study(write_study(tmp_path, systems=systems, pairs="demo", attention_checks=0))
    assert len(baseline.units) == 6 * 2 and all(u.systems[0] == "demo" for u in baseline.units)


def test_store_saves_idempotently_and_resumes(tmp_path):
    study = build_study(write_study(tmp_path))
    db, tokens, password = create_store(study, tmp_path / "s")
    store = Store(tmp_path / "s")
    assert store.check_admin(password) and not store.check_admin(password + "x") and not store.check_admin("")
    aid, name = store.annotator_for_token(tokens["a"])
    assert name == "a" and store.annotator_for_token("not-a-token") is None and store.annotator_for_token(None) is None
    screen = store.screen(aid)
    assert screen.revision == 0
    answers = {a.name: "left" for a in store.aspects}
    assert store.save(aid, screen.assignment_id, answers, screen.revision) == 1
    assert store.save(aid, screen.assignment_id, answers, screen.revision) == 1  # double click / retry: no change
    assert store.save(aid, screen.assignment_id, answers | {"Style": "tie"}, 1) == 2  # an edit of revision 1
    fresh = Store(tmp_path / "s")  # a restarted server: the next screen is the following one
    assert fresh.screen(aid).seq == screen.seq + 1 and fresh.screen(aid, screen.seq).revision == 2
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT aspect, answer FROM judgments ORDER BY aspect").fetchall()
        history = con.execute("SELECT revision, aspect, answer FROM revisions ORDER BY revision, aspect").fetchall()
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    assert rows == [("Fluency", '"left"'), ("Persona", '"left"'), ("Style", '"tie"')]
    assert history == [(1, "Fluency", '"left"'), (1, "Persona", '"left"'), (1, "Style", '"left"'),
                       (2, "Fluency", '"left"'), (2, "Persona", '"left"'), (2, "Style", '"tie"')]
    assert mode == "wal"
    assert fresh.answers(aid, screen.assignment_id)["Style"] == "tie"


def test_a_stale_screen_cannot_overwrite_a_newer_answer(tmp_path):
    _, tokens, _ = create_store(build_study(write_study(tmp_path)), tmp_path / "s")
    store = Store(tmp_path / "s")
    aid, _ = store.annotator_for_token(tokens["a"])
    first, second = store.screen(aid), store.screen(aid)  # two tabs on one link render the same screen
    assert first == second and first.revision == 0
    tab1 = {"Persona": "left", "Style": "left", "Fluency": "tie"}
    tab2 = {"Persona": "right", "Style": "right", "Fluency": "right"}
    store.save(aid, first.assignment_id, tab1, first.revision)
    with pytest.raises(StaleScreen) as refused:
        store.save(aid, second.assignment_id, tab2, second.revision)
    assert refused.value.revision == 1 and refused.value.answers == tab1 and "another tab" in str(refused.value)
    assert store.answers(aid, first.assignment_id) == tab1  # the newer answer is kept
    assert store.save(aid, second.assignment_id, tab1, second.revision) == 1  # the same answer again: accepted
    assert [r["revision"] for r in store.revision_rows()] == [1, 1, 1]


def test_every_revision_is_kept_and_exported(tmp_path, capsys):
    _, tokens, _ = create_store(build_study(write_study(tmp_path, attention_checks=0)), tmp_path / "s")
    store = Store(tmp_path / "s")
    aid, _ = store.annotator_for_token(tokens["a"])
    screen = store.screen(aid)
    store.save(aid, screen.assignment_id, {"Persona": "left", "Style": "left", "Fluency": "left"}, 0)
    store.save(aid, screen.assignment_id, {"Persona": "left", "Style": "tie", "Fluency": "left"}, 1)
    rows = {r["aspect"]: r for r in store.judgment_rows()}
    assert rows["Style"]["answer"] == "tie" and rows["Style"]["revision"] == 2
    assert [(h["revision"], h["answer"]) for h in rows["Style"]["history"]] == [(1, "left"), (2, "tie")]
    out = tmp_path / "export"
    out.mkdir()
    assert main(["annotate", "export", str(tmp_path / "s"), "--out", str(out / "j.csv")]) == 0
    history = pd.read_csv(out / "j.revisions.csv")
    style = history[history["aspect"] == "Style"].sort_values("revision")
    assert list(style["choice"]) == ["left", "tie"] and list(style["kept"]) == [False, True]
    assert set(style["annotator"]) == {"a"} and style["saved"].notna().all()
    assert set(history.columns) >= {"item", "annotator", "aspect", "left", "right", "choice", "revision", "saved"}
    assert list(pd.read_csv(out / "j.csv")["revision"]) == [2, 2, 2]
    assert main(["annotate", "export", str(tmp_path / "s"), "--out", str(out / "j.jsonl")]) == 0
    lines = [json.loads(line) for line in (out / "j.jsonl").read_text().splitlines()]
    style_line = next(line for line in lines if line["aspect"] == "Style")
    assert [h["answer"] for h in style_line["history"]] == ["left", "tie"] and style_line["revision"] == 2
    assert "j.revisions.csv" in capsys.readouterr().out


def test_export_never_overwrites_the_study(tmp_path, capsys):
    study = write_study(tmp_path)
    assert main(["annotate", "create", str(study), "--out", str(tmp_path / "s")]) == 0
    links = (tmp_path / "s" / "links.csv").read_bytes()
    assert main(["annotate", "export", str(tmp_path / "s"), "--out", str(tmp_path / "s" / "links.csv")]) == 2
    assert "is the input" in capsys.readouterr().err and (tmp_path / "s" / "links.csv").read_bytes() == links


def test_study_files_are_owner_only(tmp_path, capsys):
    old = os.umask(0o022)  # the usual umask would give 0644
    try:
        assert main(["annotate", "create", str(write_study(tmp_path)), "--out", str(tmp_path / "s")]) == 0
        store = Store(tmp_path / "s")
        with store.connect():  # WAL and SHM exist while a connection is open
            store.save(1, store.screen(1).assignment_id, {a.name: "left" for a in store.aspects}, 0)
            names = [DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", "study.json", "links.csv", "admin-password.txt"]
            modes = {name: stat.S_IMODE((tmp_path / "s" / name).stat().st_mode) for name in names}
        assert modes == dict.fromkeys(names, 0o600)
        assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700
        assert main(["annotate", "export", str(tmp_path / "s"), "--out", str(tmp_path / "j.csv")]) == 0
        assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("j.*")} == {0o600}
    finally:
        os.umask(old)


def test_a_schema_1_study_is_migrated(tmp_path):
    db, tokens, _ = create_store(build_study(write_study(tmp_path)), tmp_path / "s")
    store = Store(tmp_path / "s")
    screen = store.screen(1)
    store.save(1, screen.assignment_id, {a.name: "right" for a in store.aspects}, 0)
    with sqlite3.connect(db) as con:  # the layout of a study created before revisions existed
        con.executescript("DROP TABLE revisions; ALTER TABLE assignments DROP COLUMN revision; "
                          "UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    migrated = Store(tmp_path / "s")
    assert migrated.meta["schema_version"] == "2" and migrated.screen(1, screen.seq).revision == 1
    assert [(r["revision"], r["answer"], r["kept"]) for r in migrated.revision_rows()] == [(1, "right", True)] * 3
    with pytest.raises(StaleScreen):
        migrated.save(1, screen.assignment_id, {a.name: "left" for a in store.aspects}, 0)


def test_store_isolates_annotators_and_validates_answers(tmp_path):
    study = build_study(write_study(tmp_path))
    _, tokens, _ = create_store(study, tmp_path / "s")
    store = Store(tmp_path / "s")
    a, _ = store.annotator_for_token(tokens["a"])
    b, _ = store.annotator_for_token(tokens["b"])
    screen_b = store.screen(b)
    with pytest.raises(ConfigError, match="does not belong"):
        store.save(a, screen_b.assignment_id, {x.name: "left" for x in store.aspects}, 0)
    assert store.answers(a, screen_b.assignment_id) == {}
    with pytest.raises(ConfigError, match="missing: Fluency"):
        store.save(b, screen_b.assignment_id, {"Persona": "left", "Style": "left"}, 0)
    with pytest.raises(ConfigError, match="invalid answer"):
        store.save(b, screen_b.assignment_id, {x.name: "A" for x in store.aspects}, 0)
    assert store.frame().empty


@pytest.mark.parametrize("template", TEMPLATES)
def test_full_study_exports_every_judgment_once(tmp_path, template):
    study = build_study(write_study(tmp_path, template=template))
    _, tokens, _ = create_store(study, tmp_path / "s")
    store = Store(tmp_path / "s")
    screens = sum(answer_all(store, store.annotator_for_token(t)[0], pick_left) for t in tokens.values())
    assert screens == len(study.assignments)
    frame = store.frame()
    per_screen = 1 if study.task == "pairwise" else len(study.units[0].systems)
    assert len(frame) == screens * len(study.aspects) * per_screen
    progress = store.progress()
    assert progress["done"].tolist() == progress["assigned"].tolist()
    # the planted answer of every attention check is the one the "always first position" annotator gave?
    checks = [r for r in store.judgment_rows() if r["is_check"]]
    assert checks and all(isinstance(r["check_passed"], bool) for r in checks)
    jsonl = [json.loads(line) for line in store.export_jsonl().splitlines()]
    assert len(jsonl) == screens * len(study.aspects)
    if study.task == "pairwise":  # positions shown are kept: left is the system shown on the left
        row = frame.iloc[0]
        assert {row["left"], row["right"]} <= {"demo", "generic", "check:0", "check:1"}


def test_attention_checks_score_the_planted_answer(tmp_path):
    study = build_study(write_study(tmp_path, attention_checks={"count": 2}))
    _, tokens, _ = create_store(study, tmp_path / "s")
    store = Store(tmp_path / "s")
    aid = store.annotator_for_token(tokens["a"])[0]
    answer_all(store, aid, pick_left)
    results = {r["unit"]: r["check_passed"] for r in store.judgment_rows() if r["is_check"] and r["annotator"] == "a"}
    assert results == {"check-001": True, "check-002": False}  # check 1 plants A, check 2 plants B
    texts = [u.responses for u in study.units if u.is_check]
    assert "choose response A" in texts[0][0] and "choose response B" in texts[1][1]


def test_create_refuses_to_overwrite_and_stores_only_hashes(tmp_path):
    study = build_study(write_study(tmp_path))
    db, tokens, password = create_store(study, tmp_path / "s", admin_password="pw-1")
    with pytest.raises(ConfigError, match="never overwritten"):
        create_store(study, tmp_path / "s")
    raw = db.read_bytes()
    assert all(t.encode() not in raw for t in tokens.values()) and b"pw-1" not in raw
    assert token_digest(tokens["a"]).encode() in raw
    assert all(len(t) >= 32 for t in tokens.values())  # 24 random bytes, url-safe base64
    assert verify_password("pw-1", hash_password("pw-1")) and not verify_password("pw-2", hash_password("pw-1"))
    assert (tmp_path / "s" / DB_NAME).is_file() and (tmp_path / "s" / "study.json").is_file()


@pytest.mark.parametrize("fields, match", [
    ({"task": "rating", "template": None}, "task"),
    ({"items": {"n": 99}}, "items.n"),
    ({"items": {"ids": ["nope"]}}, "items.ids"),
    ({"annotators": {"names": ["a", "a"]}}, "unique"),
    ({"annotators": {"count": 2, "per_item": 3}}, "per_item"),
    ({"systems": {"demo": str(DEMO)}}, "at least two"),
    ({"systems": {"demo": "missing.jsonl", "generic": str(GENERIC)}}, "not found"),
    ({"pairs": "nobody"}, "pairs"),
    ({"colour": "red"}, "unknown field"),
])
def test_bad_study_files(tmp_path, fields, match):
    fields = {k: v for k, v in fields.items()}
    path = write_study(tmp_path, **fields)
    if fields.get("template", "x") is None:
        data = json.loads(path.read_text())
        data.pop("template")
        data["aspects"] = ["x"]
        path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=match):
        build_study(path)


def test_mismatched_contexts_are_refused(tmp_path):
    other = tmp_path / "other.jsonl"
    lines = GENERIC.read_text().splitlines()
    first = json.loads(lines[0])
    first["context"] = ["a different conversation"]
    other.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    with pytest.raises(InputError, match="different persona/context"):
        build_study(write_study(tmp_path, systems={"demo": str(DEMO), "generic": str(other)}, items={"n": 12}))


def test_yaml_error_has_a_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntask: pairwise\naspects: [a\n")
    with pytest.raises(InputError) as info:
        build_study(path)
    assert info.value.line is not None and "not valid YAML" in info.value.problem
