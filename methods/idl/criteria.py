"""DPOC's criterion samples (IDL §3.3.2, A.2): a reply that should rank between the gold (chosen) and a reply of
another dialogue (rejected), of one of three kinds.

* **Inconsistency** — the gold reply with one of its persona objects (extracted by Ext) replaced by a different
  object extracted from the person's other dialogues 𝔻^u ("⟨I, job, farmer⟩ → ⟨I, job, spaceman⟩").
* **Fabrication** — a random one of the m = 100 corpus replies most similar to the gold whose extracted objects are
  disjoint from those of 𝔻^u (persona content the person never stated); the released code takes the 100th
  neighbour (``pick: nth``).
* **Inversion** — the partner's utterance (of 𝔻^u and the current context) most similar to the gold: the other
  speaker's persona in the person's mouth.

The kind is drawn uniformly per turn; when the drawn kind cannot be built (no object to swap, no candidate) the next
kind in :data:`KINDS` order is tried, and the drawn and the built kinds are both reported.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from pdg_eval.errors import ConfigError

KINDS = ("inconsistency", "fabrication", "inversion")
TOP_M = 100
PICKS = ("random", "nth")


def _phrase(text: str) -> str:
    return " ".join(text.split()).casefold()


def inconsistency(gold: str, gold_objects: Sequence[str], history_objects: Sequence[str],
                  rng: random.Random) -> str | None:
    """The gold with one of its objects (one found in its text) replaced by another object of the history."""
    present = [o for o in dict.fromkeys(map(_phrase, gold_objects))
               if o and re.search(rf"(?<!\w){re.escape(o)}(?!\w)", gold.casefold())]
    if not present:
        return None
    swapped = rng.choice(present)
    others = [o for o in dict.fromkeys(map(_phrase, history_objects))
              if o and o != swapped and not re.search(rf"(?<!\w){re.escape(o)}(?!\w)", gold.casefold())]
    if not others:
        return None
    pattern = re.compile(rf"(?<!\w){re.escape(swapped)}(?!\w)", re.IGNORECASE)
    return pattern.sub(rng.choice(others), gold, count=1)


def fabrication(gold_vector: np.ndarray, corpus_vectors: np.ndarray, corpus: Sequence[str],
                objects_of: Callable[[str], set[str]], history_objects: set[str], gold: str, rng: random.Random,
                top_m: int = TOP_M, pick: str = "random") -> str | None:
    """Among the ``top_m`` corpus replies nearest to the gold (cosine of unit vectors; the gold itself excluded),
    those that state no object of the history (``objects_of(reply)``: the extractor's objects); a random one
    (``pick: random``) or the last of them (``nth``: the code's 100th neighbour, when it qualifies).

    The random pick walks a seeded permutation of the neighbours and takes the first that qualifies — a uniform draw
    among the qualifying ones that asks the extractor about a few replies only."""
    if pick not in PICKS:
        raise ConfigError(f"fabrication pick must be one of {', '.join(PICKS)}; got {pick!r}")
    similarity = corpus_vectors @ gold_vector
    order = [i for i in np.argsort(-similarity, kind="stable") if _phrase(corpus[i]) != _phrase(gold)][:top_m]
    history = {_phrase(o) for o in history_objects}

    def qualifies(i: int) -> bool:
        return not {_phrase(o) for o in objects_of(corpus[i])} & history

    if pick == "nth":
        return corpus[order[-1]] if len(order) == top_m and qualifies(order[-1]) else None
    rng.shuffle(order)
    return next((corpus[i] for i in order if qualifies(i)), None)


def inversion(gold_vector: np.ndarray, partner_vectors: np.ndarray, partner_lines: Sequence[str]) -> str | None:
    """The partner utterance most similar to the gold (first on ties)."""
    if not len(partner_lines):
        return None
    return partner_lines[int(np.argmax(partner_vectors @ gold_vector))]


@dataclass(frozen=True)
class Criterion:
    text: str
    drawn: str  # the kind drawn for the turn
    kind: str  # the kind built (the next one when the drawn kind had no sample)


def criterion(builders: dict[str, Callable[[], str | None]], rng: random.Random) -> Criterion | None:
    """Draw a kind uniformly and build it; on failure try the following kinds (cyclically); None if none can."""
    if set(builders) != set(KINDS):
        raise ValueError(f"builders for {KINDS} expected")
    drawn = rng.choice(KINDS)
    start = KINDS.index(drawn)
    for kind in KINDS[start:] + KINDS[:start]:
        text = builders[kind]()
        if text and text.strip():
            return Criterion(text, drawn, kind)
    return None
