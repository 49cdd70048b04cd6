"""Synthetic-Persona-Chat (Jandaghi et al. 2023; ``google-research-datasets/Synthetic-Persona-Chat@1f367a0:data/``):
CSV rows ``user 1 personas``, ``user 2 personas`` (newline-separated sentences) and ``Best Generated Conversation``
(lines ``User 1: ...`` / ``User 2: ...``; fields span lines)."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterator

from ..errors import InputError

COLUMNS = ("user 1 personas", "user 2 personas", "Best Generated Conversation")

# "User 1: hi", plus the markdown variants of a few rows: "*User 1:* hi", "* User 1: hi *", "* * User 1: * * hi".
_USER_TURN = re.compile(r"^(?P<lead>[*\s]*)User (?P<who>[12]):(?P<rest>.*)$")


def synthetic_turns(conversation: str) -> list[tuple[int, str]]:
    """``(user, text)`` for each ``User 1:``/``User 2:`` line of a conversation cell, prefixes removed.

    Lines without the prefix (stage directions such as ``[Later]``, ``* * *``, recipe bodies, a third
    speaker, unattributed text in a few rows) are dropped.
    """
    turns = []
    for line in conversation.splitlines():
        match = _USER_TURN.match(line)
        if match is None:
            continue
        text = match["rest"].strip(" *") if "*" in match["lead"] else match["rest"].strip()
        if text:
            turns.append((int(match["who"]), text))
    return turns


def csv_rows(path: str | Path) -> Iterator[tuple[int, dict[str, str]]]:
    """``(start line, row)`` of a Synthetic-Persona-Chat CSV file (fields may span lines); a missing column or a
    row with another number of fields is refused with its line."""
    source = str(path)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        missing = [c for c in COLUMNS if header is None or c not in header]
        if missing:
            raise InputError(source, 1, "header", f"missing column(s) {', '.join(map(repr, missing))}")
        start = reader.line_num + 1
        for cells in reader:
            if len(cells) != len(header):
                raise InputError(source, start, None, f"{len(cells)} fields, the header has {len(header)}")
            yield start, dict(zip(header, cells))
            start = reader.line_num + 1
