"""The judgment tables that the store exports, importers produce and the analysis reads.

One long table per task type, one row per judgment (pandas DataFrame):

* **pairwise** — ``item, annotator, aspect, left, right, choice``: ``left``/``right`` are the system names in the
  positions shown (left = "A"), ``choice`` is ``"left"``, ``"right"`` or ``"tie"``;
* **ranking** — ``item, annotator, aspect, system, rank, position``: ``rank`` 1 is best, ``position`` is the
  0-based place the response was shown in;
* **likert** — ``item, annotator, aspect, system, value, position``: ``value`` on the aspect's scale.

Optional columns on every table: ``is_check`` (attention-check item, excluded from analysis), ``created``/``updated``
(ISO timestamps), ``revision`` (of the stored answer, :mod:`pdg_eval.annotate.store`), ``study``. ``position`` may
be missing (NaN) for imported judgments whose display order is unknown.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from ..errors import ConfigError

TASKS = ("pairwise", "ranking", "likert")
CHOICES = ("left", "right", "tie")
REQUIRED: dict[str, tuple[str, ...]] = {
    "pairwise": ("item", "annotator", "aspect", "left", "right", "choice"),
    "ranking": ("item", "annotator", "aspect", "system", "rank", "position"),
    "likert": ("item", "annotator", "aspect", "system", "value", "position"),
}
KEYS: dict[str, tuple[str, ...]] = {  # one judgment per key: a duplicate is a bug upstream
    "pairwise": ("item", "annotator", "aspect"),
    "ranking": ("item", "annotator", "aspect", "system"),
    "likert": ("item", "annotator", "aspect", "system"),
}


def empty_frame(task: str) -> pd.DataFrame:
    """A table with the task's required columns and no rows."""
    return pd.DataFrame({name: pd.Series(dtype="object") for name in REQUIRED[_task(task)]})


def _task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError(f"unknown task type {task!r}; expected one of {', '.join(TASKS)}")
    return task


def validate_frame(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """Check a judgment table's columns, values and keys; returns it with ``is_check`` filled (False)."""
    missing = [c for c in REQUIRED[_task(task)] if c not in frame.columns]
    if missing:
        raise ConfigError(f"{task} judgments lack column(s): {', '.join(missing)}")
    frame = frame.copy()
    if "is_check" not in frame.columns:
        frame["is_check"] = False
    if task == "pairwise":
        bad = sorted(set(frame["choice"]) - set(CHOICES))
        if bad:
            raise ConfigError(f"pairwise choice must be one of {', '.join(CHOICES)}; got {bad[:5]}")
        if (frame["left"] == frame["right"]).any():
            raise ConfigError("pairwise judgment compares a system with itself")
    duplicated = frame.duplicated(list(KEYS[task]))
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise ConfigError("duplicate judgment for " + ", ".join(f"{k}={row[k]!r}" for k in KEYS[task]))
    return frame


def analysed(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """The validated rows that count: attention-check items removed."""
    frame = validate_frame(frame, task)
    return frame[~frame["is_check"].astype(bool)].reset_index(drop=True)


def systems_of(frame: pd.DataFrame, task: str) -> list[str]:
    """Sorted system names appearing in a table."""
    if task == "pairwise":
        return sorted(set(frame["left"]) | set(frame["right"]))
    return sorted(set(frame["system"]))


def aspects_of(frame: pd.DataFrame, order: Sequence[str] | None = None) -> list[str]:
    """Aspects in the study's order when given, else in first-seen order."""
    seen = list(dict.fromkeys(frame["aspect"]))
    if order:
        return [a for a in order if a in seen] + [a for a in seen if a not in order]
    return seen
