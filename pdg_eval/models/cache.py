"""Content-addressed score cache (SQLite, WAL).

A key is the sha256 of (model weights hash, variant, input texts), so a re-run recomputes nothing
and a changed model can never reuse stale scores. Location: ``$PDG_EVAL_CACHE`` or
``~/.cache/pdg-eval/scores.sqlite``; ``PDG_EVAL_CACHE=off`` disables it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence


def cache_key(model_hash: str, variant: str, texts: Sequence[str]) -> str:
    payload = "\x1e".join([model_hash, variant, *texts]).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def default_cache_path() -> Path | None:
    env = os.environ.get("PDG_EVAL_CACHE")
    if env == "off":
        return None
    if env:
        return Path(env)
    return Path.home() / ".cache" / "pdg-eval" / "scores.sqlite"


class ScoreCache:
    """Key → JSON value store; safe for several processes (SQLite transactions, WAL journal)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60)
            self._create_schema()

    def _create_schema(self, attempts: int = 40) -> None:
        """WAL journal and the table. Several processes opening a new file at once (``accelerate launch``)
        can get ``database is locked`` at once, without SQLite's busy wait: switching the journal mode
        is retried, with a growing pause, before giving up."""
        assert self._db is not None
        for attempt in range(attempts):
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self._db.commit()
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == attempts - 1:
                    raise
                self._db.rollback()
                time.sleep(min(0.02 * (attempt + 1), 0.5))

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        if self._db is None or not keys:
            return {}
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            part = list(keys[start:start + 500])
            marks = ",".join("?" * len(part))
            for key, value in self._db.execute(f"SELECT key, value FROM scores WHERE key IN ({marks})", part):
                found[key] = json.loads(value)
        return found

    def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        if self._db is None:
            return
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO scores (key, value) VALUES (?, ?)",
                                 [(k, json.dumps(v)) for k, v in items])


def cached_predictions(cache: ScoreCache, model_hash: str, variant: str, items: Sequence[Any],
                       texts_of: Callable[[Any], Sequence[str]],
                       compute: Callable[[list[Any]], Sequence[Any]]) -> list[Any]:
    """``compute(items)`` in input order, computing only the items the cache lacks (each distinct one once;
    under ``accelerate launch`` split between the processes, see :mod:`pdg_eval.models.distributed`).

    ``texts_of(item)`` gives the texts that identify an item; with the model's weights hash and ``variant``
    they form its cache key.
    """
    from .distributed import agree_on_keys, is_main_process, shared_compute

    keys = [cache_key(model_hash, variant, texts_of(item)) for item in items]
    first: dict[str, int] = {}  # key -> first item with it
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    found = cache.get_many(list(first))
    missing = agree_on_keys([k for k in first if k not in found])  # several processes: the union, one order
    if missing:
        fresh = dict(zip(missing, shared_compute(compute, [items[first[k]] for k in missing])))
        if is_main_process():
            cache.put_many(fresh.items())
        found.update(fresh)
    return [found[k] for k in keys]
