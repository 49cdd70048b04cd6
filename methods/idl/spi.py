"""Static Persona Identification (IDL §3.2.1, Eq. 2–4, A.2): group one person's dialogues by what they reveal, then
pick target dialogues and their references inside each group.

Each dialogue is represented by z = Enc(its persona-intensive utterances of the person, concatenated), unit length.
A person with at least 2·c dialogues is clustered with k-means into c = 3 groups and groups of one dialogue are
dropped (the released code's ``KMeans(n_clusters=3)`` condition, IDL's ``dataset/process_convai2.py``); a person with
fewer forms one group. In each group the paper draws one target dialogue at random (``targets: random``);
``targets: all`` makes every dialogue a target once. The references of a target are its top-k (k = 5) nearest group
members by cosine of z (``references: all`` = every other member, as the code).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pdg_eval.errors import ConfigError

CLUSTERS = 3
TOP_K = 5
TARGETS = ("random", "all")
REFERENCES = ("top_k", "all")


def groups(vectors: np.ndarray, clusters: int = CLUSTERS, seed: int = 13) -> list[list[int]]:
    """Indices of one person's dialogues grouped by k-means over their unit-length vectors (rows), each group in
    index order, groups ordered by their first member; one group when there are fewer than ``2 · clusters``."""
    n = len(vectors)
    if n < 2 * clusters:
        return [list(range(n))] if n else []
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=clusters, random_state=seed, n_init=10).fit_predict(np.asarray(vectors))
    members = [[i for i in range(n) if labels[i] == c] for c in range(clusters)]
    return sorted((m for m in members if len(m) >= 2), key=lambda m: m[0])


@dataclass(frozen=True)
class Assignment:
    """A target dialogue and its references (indices into the person's dialogues)."""

    target: int
    references: tuple[int, ...]


def references_of(target: int, group: Sequence[int], vectors: np.ndarray, top_k: int | None) -> tuple[int, ...]:
    """The other members of ``group``, nearest to ``target`` first (cosine of the unit vectors; ties by index), the
    first ``top_k`` when given."""
    others = [i for i in group if i != target]
    ranked = sorted(others, key=lambda i: (-float(vectors[target] @ vectors[i]), i))
    return tuple(ranked if top_k is None else ranked[:top_k])


def assignments(vectors: np.ndarray, targets: str = "random", references: str = "top_k", clusters: int = CLUSTERS,
                top_k: int = TOP_K, seed: int = 13) -> list[Assignment]:
    """The (target, references) pairs of one person; a group of one dialogue gives none (nothing to learn from)."""
    if targets not in TARGETS:
        raise ConfigError(f"targets must be one of {', '.join(TARGETS)}; got {targets!r}")
    if references not in REFERENCES:
        raise ConfigError(f"references must be one of {', '.join(REFERENCES)}; got {references!r}")
    rng = random.Random(seed)
    out = []
    for group in groups(vectors, clusters, seed):
        if len(group) < 2:
            continue
        chosen = group if targets == "all" else [rng.choice(group)]
        for target in chosen:
            out.append(Assignment(target, references_of(target, group, vectors,
                                                        top_k if references == "top_k" else None)))
    return out
