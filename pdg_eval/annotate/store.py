"""The annotation store: one SQLite file per study (WAL journal, one transaction per saved screen).

Every judgment is a row keyed by (assignment, aspect) — an assignment being one annotator's copy of one unit, with
the display order drawn when the study was created — so a resubmitted screen (a double click, a retry after a
server restart) updates the row instead of adding one, and a judgment is never lost once its transaction commits
(``synchronous=FULL``). Annotators are found by the SHA-256 of their token; the token itself is not stored.
The admin password is kept as a PBKDF2-SHA256 hash.

Saves are optimistic-concurrency checked: an assignment has a revision (0 = unanswered, +1 per save that changes
its answers) and a save names the revision its screen was rendered from, so a stale screen (a second tab on the
same link) cannot overwrite a newer answer (:class:`StaleScreen`). Every revision is kept in ``revisions``.
The study's files are created owner-only (0600): they hold the system names and the answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pandas as pd

from ..errors import ConfigError
from ..files import atomic_writer
from .frames import empty_frame, validate_frame
from .study import Aspect, Study, Unit, check_passed

DB_NAME = "study.sqlite"
SCHEMA_VERSION = 2
PBKDF2_ROUNDS = 200_000
PRIVATE = 0o600  # mode of every file of a study
REVISIONS_TABLE = """
CREATE TABLE revisions(
  assignment_id INTEGER NOT NULL REFERENCES assignments(id), revision INTEGER NOT NULL, aspect TEXT NOT NULL,
  annotator_id INTEGER NOT NULL REFERENCES annotators(id), answer TEXT NOT NULL, saved TEXT NOT NULL,
  PRIMARY KEY(assignment_id, revision, aspect));
"""
SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE annotators(
  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, token_sha256 TEXT UNIQUE NOT NULL,
  started TEXT, last_seen TEXT);
CREATE TABLE units(
  id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, item TEXT NOT NULL, payload TEXT NOT NULL,
  is_check INTEGER NOT NULL DEFAULT 0, expected TEXT);
CREATE TABLE assignments(
  id INTEGER PRIMARY KEY, annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  unit_id INTEGER NOT NULL REFERENCES units(id), seq INTEGER NOT NULL, shown TEXT NOT NULL,
  revision INTEGER NOT NULL DEFAULT 0, UNIQUE(annotator_id, unit_id), UNIQUE(annotator_id, seq));
CREATE TABLE judgments(
  id INTEGER PRIMARY KEY, assignment_id INTEGER NOT NULL REFERENCES assignments(id), aspect TEXT NOT NULL,
  answer TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL, UNIQUE(assignment_id, aspect));
CREATE INDEX judgments_by_assignment ON judgments(assignment_id);
""" + REVISIONS_TABLE


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${PBKDF2_ROUNDS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, rounds, salt, digest = stored.split("$")
    except ValueError:
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt), int(rounds))
    return hmac.compare_digest(got.hex(), digest)


@dataclass(frozen=True)
class Screen:
    """One annotator's current screen: the unit, the order its responses are shown in, and progress."""

    assignment_id: int
    seq: int
    unit: Unit
    shown: tuple[int, ...]
    done: int
    total: int
    revision: int = 0  # of the assignment's answers when the screen was read (0: unanswered)

    @property
    def systems_shown(self) -> list[str]:
        return [self.unit.systems[i] for i in self.shown]

    @property
    def responses_shown(self) -> list[str]:
        return [self.unit.responses[i] for i in self.shown]


class StaleScreen(ConfigError):
    """A save based on an older revision than the stored one (the screen was answered in another tab or window);
    nothing was written. ``answers`` and ``revision`` are the stored (newer) ones."""

    def __init__(self, revision: int, answers: dict[str, Any]):
        self.revision, self.answers = revision, answers
        super().__init__("This item was answered in another tab or window: your answer was not saved; "
                         "the newer answer is kept.")


class Store:
    """Access to one study's SQLite file. Connections are opened per operation (safe across Streamlit threads)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        self.path = path / DB_NAME if path.is_dir() else path
        if not self.path.is_file():
            raise ConfigError(f"no study database at {self.path} (create one with `pdg-eval annotate create`)")
        with self.connect() as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
            if int(meta["schema_version"]) > SCHEMA_VERSION:
                raise ConfigError(f"{self.path} was written by a newer pdg-eval (schema {meta['schema_version']})")
            if int(meta["schema_version"]) == 1:
                _migrate_v1(db)
                meta["schema_version"] = str(SCHEMA_VERSION)
        self.meta = meta
        self.task: str = meta["task"]
        self.aspects = [Aspect(a["name"], a["question"], a["instructions"], tuple(a["scale"]),
                               {int(k): v for k, v in a["labels"].items()}) for a in json.loads(meta["aspects"])]
        self.title: str = meta["title"]
        self.instructions: str = meta["instructions"]

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = _open(self.path)
        try:
            yield db
        finally:
            db.close()

    # -- annotators -----------------------------------------------------------------------------------------
    def annotator_for_token(self, token: str | None) -> tuple[int, str] | None:
        if not token:
            return None
        with self.connect() as db:
            row = db.execute("SELECT id, name FROM annotators WHERE token_sha256 = ?", (token_digest(token),)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def has_started(self, annotator_id: int) -> bool:
        with self.connect() as db:
            return db.execute("SELECT started FROM annotators WHERE id = ?", (annotator_id,)).fetchone()[0] is not None

    def start(self, annotator_id: int) -> None:
        with self.connect() as db, _write(db):
            db.execute("UPDATE annotators SET started = COALESCE(started, ?), last_seen = ? WHERE id = ?",
                       (now(), now(), annotator_id))

    def check_admin(self, password: str) -> bool:
        return bool(password) and verify_password(password, self.meta["admin_password"])

    # -- screens and saving ---------------------------------------------------------------------------------
    def screen(self, annotator_id: int, seq: int | None = None) -> Screen | None:
        """The first unfinished assignment of the annotator (or the one at ``seq``); None when all are done."""
        n_aspects = len(self.aspects)
        with self.connect() as db:
            total = db.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ?", (annotator_id,)).fetchone()[0]
            done = db.execute(
                "SELECT COUNT(*) FROM assignments a WHERE a.annotator_id = ? AND "
                "(SELECT COUNT(*) FROM judgments j WHERE j.assignment_id = a.id) >= ?",
                (annotator_id, n_aspects)).fetchone()[0]
            query = ("SELECT a.id, a.seq, a.shown, u.payload, a.revision FROM assignments a "
                     "JOIN units u ON u.id = a.unit_id WHERE a.annotator_id = ? ")
            if seq is None:
                row = db.execute(query + "AND (SELECT COUNT(*) FROM judgments j WHERE j.assignment_id = a.id) < ? "
                                 "ORDER BY a.seq LIMIT 1", (annotator_id, n_aspects)).fetchone()
            else:
                row = db.execute(query + "AND a.seq = ?", (annotator_id, seq)).fetchone()
        if row is None:
            return None
        return Screen(int(row[0]), int(row[1]), _unit(json.loads(row[3])), tuple(json.loads(row[2])), done, total,
                      int(row[4]))

    def answers(self, annotator_id: int, assignment_id: int) -> dict[str, Any]:
        """The saved answers (by aspect) of one of the annotator's own assignments."""
        with self.connect() as db:
            owned = db.execute("SELECT 1 FROM assignments WHERE id = ? AND annotator_id = ?",
                               (assignment_id, annotator_id)).fetchone()
            stored = _stored(db, assignment_id) if owned else {}
        return {aspect: json.loads(answer) for aspect, answer in stored.items()}

    def validate_answers(self, n_shown: int, answers: Mapping[str, Any]) -> None:
        names = [a.name for a in self.aspects]
        if sorted(answers) != sorted(names):
            missing = [n for n in names if n not in answers]
            raise ConfigError(f"answer every question (missing: {', '.join(missing) or 'none'}; "
                              f"unknown: {', '.join(sorted(set(answers) - set(names))) or 'none'})")
        for aspect in self.aspects:
            value = answers[aspect.name]
            if self.task == "pairwise":
                ok = value in ("left", "right", "tie")
            elif self.task == "ranking":
                ok = isinstance(value, list) and sorted(value) == list(range(1, n_shown + 1))
            else:
                ok = isinstance(value, list) and len(value) == n_shown and all(v in aspect.scale for v in value)
            if not ok:
                raise ConfigError(f"{aspect.name}: invalid answer {value!r} for a {self.task} question")

    def save(self, annotator_id: int, assignment_id: int, answers: Mapping[str, Any], base_revision: int) -> int:
        """Store all answers of one screen in one transaction, as the revision after ``base_revision`` (the one the
        screen was rendered from); returns the stored revision.

        Saving the stored answers again (a double click, a retry) changes nothing. A save of other answers based on
        an older revision raises :class:`StaleScreen` and writes nothing: the newer answer is kept."""
        stamp = now()
        with self.connect() as db:
            row = db.execute("SELECT shown FROM assignments WHERE id = ? AND annotator_id = ?",
                             (assignment_id, annotator_id)).fetchone()
            if row is None:  # never write into another annotator's assignment
                raise ConfigError("this screen does not belong to you")
            self.validate_answers(len(json.loads(row[0])), answers)
            encoded = {name: json.dumps(value) for name, value in answers.items()}
            with _write(db):
                revision = db.execute("SELECT revision FROM assignments WHERE id = ?", (assignment_id,)).fetchone()[0]
                stored = _stored(db, assignment_id)
                if stored == encoded:
                    return revision
                if revision != base_revision:
                    raise StaleScreen(revision, {k: json.loads(v) for k, v in stored.items()})
                revision += 1
                db.executemany(
                    "INSERT INTO judgments(assignment_id, aspect, answer, created, updated) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(assignment_id, aspect) DO UPDATE SET updated = excluded.updated, "
                    "answer = excluded.answer", [(assignment_id, name, value, stamp, stamp)
                                                 for name, value in encoded.items()])
                db.executemany("INSERT INTO revisions VALUES (?, ?, ?, ?, ?, ?)",
                               [(assignment_id, revision, name, annotator_id, value, stamp)
                                for name, value in encoded.items()])
                db.execute("UPDATE assignments SET revision = ? WHERE id = ?", (revision, assignment_id))
                db.execute("UPDATE annotators SET last_seen = ? WHERE id = ?", (stamp, annotator_id))
        return revision

    # -- admin and export -----------------------------------------------------------------------------------
    def progress(self) -> pd.DataFrame:
        """Per annotator: screens done, assigned and answered more than once (``revised``), judgments, attention
        checks passed, first and last activity."""
        rows = self.judgment_rows()
        with self.connect() as db:
            annotators = db.execute(
                "SELECT n.name, COUNT(a.id), SUM(a.revision > 1), n.started, n.last_seen FROM annotators n "
                "LEFT JOIN assignments a ON a.annotator_id = n.id GROUP BY n.id ORDER BY n.name").fetchall()
        n_aspects = len(self.aspects)
        out = []
        for name, assigned, revised, started, last_seen in annotators:
            mine = [r for r in rows if r["annotator"] == name]
            per_screen: dict[str, int] = {}
            for r in mine:
                per_screen[r["unit"]] = per_screen.get(r["unit"], 0) + 1
            checks = [r for r in mine if r["is_check"]]
            out.append({"annotator": name, "done": sum(1 for v in per_screen.values() if v >= n_aspects),
                        "assigned": assigned, "revised": int(revised or 0), "judgments": len(mine),
                        "checks_passed": sum(bool(r["check_passed"]) for r in checks), "checks_answered": len(checks),
                        "started": started, "last_seen": last_seen})
        return pd.DataFrame(out)

    def revision_rows(self) -> list[dict[str, Any]]:
        """Every saved revision of every judgment, oldest first per screen: annotator (who saved it), unit, the
        systems in the positions shown, revision number, answer, save time, and whether it is the kept answer."""
        with self.connect() as db:
            rows = db.execute(
                "SELECT n.name, u.key, u.item, u.payload, u.is_check, a.seq, a.shown, a.revision, r.revision, "
                "r.aspect, r.answer, r.saved FROM revisions r JOIN assignments a ON a.id = r.assignment_id "
                "JOIN units u ON u.id = a.unit_id JOIN annotators n ON n.id = r.annotator_id "
                "ORDER BY n.name, a.seq, r.aspect, r.revision").fetchall()
        return [{"annotator": name, "unit": key, "item": item, "seq": seq, "aspect": aspect,
                 "shown": _shown(payload, shown), "answer": json.loads(answer), "is_check": bool(is_check),
                 "revision": revision, "saved": saved, "kept": revision == current}
                for name, key, item, payload, is_check, seq, shown, current, revision, aspect, answer, saved in rows]

    def judgment_rows(self) -> list[dict[str, Any]]:
        """Every stored judgment with annotator, unit, the systems in the positions shown, answer, timestamps, the
        revision kept and its ``history`` (every revision: number, answer, save time; oldest first)."""
        with self.connect() as db:
            rows = db.execute(
                "SELECT a.id, n.name, u.key, u.item, u.payload, u.is_check, u.expected, a.seq, a.shown, j.aspect, "
                "j.answer, j.created, j.updated, a.revision FROM judgments j JOIN assignments a "
                "ON a.id = j.assignment_id JOIN units u ON u.id = a.unit_id JOIN annotators n ON n.id = a.annotator_id "
                "ORDER BY n.name, a.seq, j.aspect").fetchall()
            history: dict[tuple[int, str], list[dict[str, Any]]] = {}
            for assignment_id, aspect, revision, answer, saved in db.execute(
                    "SELECT assignment_id, aspect, revision, answer, saved FROM revisions ORDER BY revision"):
                history.setdefault((assignment_id, aspect), []).append(
                    {"revision": revision, "answer": json.loads(answer), "saved": saved})
        out = []
        for (assignment_id, name, key, item, payload, is_check, expected, seq, shown, aspect, answer, created, updated,
             rev) in rows:
            value = json.loads(answer)
            out.append({"annotator": name, "unit": key, "item": item, "seq": seq, "aspect": aspect,
                        "shown": _shown(payload, shown), "answer": value, "is_check": bool(is_check),
                        "check_passed": check_passed(json.loads(expected), aspect, value) if is_check else None,
                        "created": created, "updated": updated, "revision": rev,
                        "history": history.get((assignment_id, aspect), [])})
        return out

    def frame(self, include_checks: bool = True) -> pd.DataFrame:
        """The judgments as the task's long table (:mod:`pdg_eval.annotate.frames`), with the kept ``revision``."""
        frame = pd.DataFrame(self._table(self.judgment_rows(), ("created", "updated", "revision"), include_checks))
        return empty_frame(self.task) if frame.empty else validate_frame(frame, self.task)

    def history_frame(self, include_checks: bool = True) -> pd.DataFrame:
        """Every revision as the task's long table plus ``revision``, ``saved`` and ``kept`` (the stored answer)."""
        extra = ("revision", "saved", "kept")
        columns = list(empty_frame(self.task).columns) + ["is_check", *extra]
        return pd.DataFrame(self._table(self.revision_rows(), extra, include_checks), columns=columns)

    def _table(self, answers: Iterable[Mapping[str, Any]], extra: Sequence[str], include_checks: bool
               ) -> list[dict[str, Any]]:
        """Stored answers (or revisions) as rows of the task's long table, with the ``extra`` fields of each."""
        rows: list[dict[str, Any]] = []
        for r in answers:
            if include_checks or not r["is_check"]:
                rows += self._long_rows(r, {key: r[key] for key in extra})
        return rows

    def _long_rows(self, r: Mapping[str, Any], extra: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One stored answer as rows of the task's long table."""
        common = {"item": r["unit"], "annotator": r["annotator"], "aspect": r["aspect"], "is_check": r["is_check"]}
        if self.task == "pairwise":
            return [common | {"left": r["shown"][0], "right": r["shown"][1], "choice": r["answer"]} | extra]
        key = "rank" if self.task == "ranking" else "value"
        return [common | {"system": system, key: value, "position": position} | extra
                for position, (system, value) in enumerate(zip(r["shown"], r["answer"]))]

    def export_jsonl(self, include_checks: bool = True) -> str:
        """Every judgment as one JSON line (annotator, unit, systems in the positions shown, answer, timestamps,
        revision history)."""
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in self.judgment_rows()
                       if include_checks or not row["is_check"])


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=30000")
    return db


def _migrate_v1(db: sqlite3.Connection) -> None:
    """Schema 1 → 2: assignments get a revision, and the answers stored so far become revision 1."""
    with _write(db):
        if db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] != "1":
            return  # another process migrated it meanwhile
        db.execute("ALTER TABLE assignments ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
        db.execute(REVISIONS_TABLE)
        db.execute("UPDATE assignments SET revision = 1 WHERE id IN (SELECT assignment_id FROM judgments)")
        db.execute("INSERT INTO revisions SELECT j.assignment_id, 1, j.aspect, a.annotator_id, j.answer, j.updated "
                   "FROM judgments j JOIN assignments a ON a.id = j.assignment_id")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


@contextlib.contextmanager
def _write(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _shown(payload: str, shown: str) -> list[str]:
    """The systems of a unit in the positions one annotator saw them."""
    systems = json.loads(payload)["systems"]
    return [systems[i] for i in json.loads(shown)]


def _stored(db: sqlite3.Connection, assignment_id: int) -> dict[str, str]:
    """The stored answers of an assignment, by aspect, as JSON text."""
    return dict(db.execute("SELECT aspect, answer FROM judgments WHERE assignment_id = ?", (assignment_id,)))


def _unit(payload: Mapping[str, Any]) -> Unit:
    return Unit(payload["key"], payload["item"], tuple(payload["persona"]), tuple(payload["context"]),
                tuple(payload["systems"]), tuple(payload["responses"]), bool(payload["is_check"]), payload["expected"])


def create_store(study: Study, out_dir: str | Path, admin_password: str | None = None, force: bool = False
                 ) -> tuple[Path, dict[str, str], str]:
    """Write ``study.sqlite`` and ``study.json`` into ``out_dir``; returns the database, a fresh token per
    annotator (shown once — only hashes are stored) and the admin password (generated unless given)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = out / DB_NAME
    if path.exists() and not force:
        raise ConfigError(f"{path} exists: a study's judgments are never overwritten (use another folder, or --force "
                          "to discard them)")
    tmp = out / f".{DB_NAME}.tmp"
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)
    tokens = {name: secrets.token_urlsafe(24) for name in study.annotators}
    password = admin_password or secrets.token_urlsafe(12)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))  # SQLite gives its WAL/SHM this mode
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.executescript(SCHEMA)
        db.execute("BEGIN")
        meta = {"schema_version": str(SCHEMA_VERSION), "name": study.name, "task": study.task, "title": study.title,
                "instructions": study.instructions, "aspects": json.dumps([a.to_json() for a in study.aspects]),
                "seed": str(study.seed), "sources": json.dumps(study.sources), "created": now(),
                "admin_password": hash_password(password)}
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        ids = {}
        for name in study.annotators:
            ids[name] = db.execute("INSERT INTO annotators(name, token_sha256) VALUES (?, ?)",
                                   (name, token_digest(tokens[name]))).lastrowid
        unit_ids = {}
        for unit in study.units:
            unit_ids[unit.key] = db.execute(
                "INSERT INTO units(key, item, payload, is_check, expected) VALUES (?, ?, ?, ?, ?)",
                (unit.key, unit.item, json.dumps(unit.to_json()), int(unit.is_check),
                 None if unit.expected is None else json.dumps(unit.expected))).lastrowid
        db.executemany("INSERT INTO assignments(annotator_id, unit_id, seq, shown) VALUES (?, ?, ?, ?)",
                       [(ids[a.annotator], unit_ids[a.unit], a.seq, json.dumps(list(a.shown)))
                        for a in study.assignments])
        db.execute("COMMIT")
    finally:
        db.close()
    if force:
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
    tmp.replace(path)
    with atomic_writer(out / "study.json", mode=PRIVATE) as handle:
        json.dump(study.to_json(), handle, indent=1, ensure_ascii=False)
        handle.write("\n")
    return path, tokens, password
