"""IDL's MSL plan for one person (§3.2): which dialogue is a target and which of the person's other dialogues,
in which order, precede it — SPI (:mod:`.spi`) on the persona-intensive utterances, then DPI (:mod:`.conved`) on
the chosen references.

The persona-intensive utterances of a dialogue are the person's turns that contain an object the extractor found in
them (:func:`pdg_eval_methods.idl.extractor.persona_intensive`); without extracted objects (no extractor run, or none found)
all of the person's turns stand in, as the released code falls back to all bot sentences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from pdg_eval.records import SELF

from pdg_eval_methods.common.data import Session

from . import conved, spi
from .extractor import persona_intensive

Encode = Callable[[Sequence[str]], np.ndarray]  # texts -> unit-length rows


@dataclass(frozen=True)
class Plan:
    target: str  # dialogue id
    references: tuple[str, ...]  # dialogue ids, in DPI order (the target follows the last)


@dataclass(frozen=True)
class PlanOptions:
    clusters: int = spi.CLUSTERS
    top_k: int = spi.TOP_K
    targets: str = "all"
    references: str = "top_k"
    scale: float = conved.LAMBDA
    ordering: str = "exact"
    seed: int = 13


def own_turns(session: Session) -> list[str]:
    return [text for text, role in zip(session.turns, session.roles) if role == SELF]


def spi_text(session: Session, objects: set[str]) -> str:
    """The persona-intensive utterances of the person, joined (all of the person's turns when none is)."""
    mine = own_turns(session)
    return " ".join(persona_intensive(mine, objects) or mine)


def plan_person(sessions: Sequence[Session], objects: Sequence[set[str]], encode: Encode,
                options: PlanOptions = PlanOptions()) -> list[Plan]:
    """Targets and ordered references among one person's dialogues (``objects[i]``: the persona objects extracted
    from ``sessions[i]``)."""
    if len(sessions) < 2:
        return []
    vectors = encode([spi_text(s, o) for s, o in zip(sessions, objects)])
    chosen = spi.assignments(vectors, options.targets, options.references, options.clusters, options.top_k,
                             options.seed)
    needed = sorted({i for a in chosen for i in (a.target, *a.references)})
    utterances = {i: (sessions[i].roles, encode(list(sessions[i].turns))) for i in needed}
    plans = []
    for assignment in chosen:
        members = [assignment.target, *assignment.references]
        distances = conved.distance_matrix([utterances[i] for i in members], options.scale)
        order = conved.order_references(distances, 0, options.ordering)
        plans.append(Plan(sessions[assignment.target].dialogue_id,
                          tuple(sessions[members[k]].dialogue_id for k in order[:-1])))
    return plans
