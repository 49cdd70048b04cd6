"""PersonaExt (Zhu et al., ACL 2023; ``Cyn7hia/PAED@f34db8e``): persona sentences of PersonaChat, each with one
⟨subject, relation, object⟩ triple over 105 relation types. The zero-shot dev/test splits are JSON lines
``{"triplets": [{"tokens", "head", "tail", "label"}]}`` (head and tail are token indices); a sentence appears in
several split files, and is read once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import InputError
from ..inputs import iter_lines


@dataclass(frozen=True)
class Triple:
    subject: str
    relation: str
    object: str

    def text(self) -> str:
        return f"<{self.subject}, {self.relation}, {self.object}>"

    def key(self) -> tuple[str, str, str]:
        return tuple(" ".join(part.split()).casefold() for part in (self.subject, self.relation, self.object))


@dataclass(frozen=True)
class Sentence:
    text: str
    triple: Triple


def read_personaext(paths: Iterable[str | Path]) -> list[Sentence]:
    """Unique sentences (first triple kept for a repeated sentence) of PersonaExt split files, in first-seen order."""
    seen: dict[str, Sentence] = {}
    for path in paths:
        for number, line in iter_lines(path):
            if not line.strip():
                continue
            try:
                for item in json.loads(line)["triplets"]:
                    tokens = item["tokens"]
                    text = " ".join(tokens)
                    triple = Triple(" ".join(tokens[i] for i in item["head"]), item["label"],
                                    " ".join(tokens[i] for i in item["tail"]))
                    seen.setdefault(text, Sentence(text, triple))
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise InputError(str(path), number, "triplets", f"not a PersonaExt record ({exc})") from None
    return list(seen.values())


def personaext_files(root: str | Path) -> list[Path]:
    """The split files under a PersonaExt folder (``*/*.jsonl``), or the file itself."""
    root = Path(root)
    return [root] if root.is_file() else sorted(root.glob("*/*.jsonl")) or sorted(root.glob("*.jsonl"))
