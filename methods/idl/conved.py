"""Dynamic Persona Identification (IDL §3.2.2, A.3): the conversation edit distance between two dialogues and the
order of the reference dialogues that minimises the distance between neighbours.

convED (Lee et al. 2021, as IDL A.3 writes it) is a Levenshtein distance over utterances:

    lev(i, j) = max(i, j)                                   if min(i, j) = 0
    lev(i, j) = min(lev(i, j−1) + 1, lev(i−1, j) + 1, lev(i−1, j−1) + λ·w_sub(A_i, B_j))

with w_sub(a, b) = 1 − cos(Enc(a), Enc(b)) when a and b have the same speaker role and ∞ otherwise; λ = 5 (IDL A.2;
the released code uses 1 — and a DP with aliased rows, so the formula is implemented here, not the code).

Ordering: the references are arranged, the target dialogue last, so that the summed distance of adjacent dialogues
is minimal. IDL names "Dijkstra's minimum distance algorithm"; the minimum over orders is a shortest Hamiltonian path,
solved exactly here by the Held–Karp dynamic programme (k ≤ :data:`EXACT_LIMIT` references). ``greedy`` is the
released code's walk (IDL's ``dataset/process_convai2.py``): from the target to its nearest unvisited reference, and
so on; the references are listed in visiting order (nearest to the target first), then the target.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from pdg_eval.errors import ConfigError

LAMBDA = 5.0
#: above this many references the exact order costs 2^k·k² steps (k ≤ 8 covers IDL's top-5 references); use ``greedy``
EXACT_LIMIT = 8
ORDERINGS = ("exact", "greedy", "none")  # none: no DPI (the "w/o DPI" ablation)


def conv_edit_distance(roles_a: Sequence[str], roles_b: Sequence[str], cosine: np.ndarray,
                       scale: float = LAMBDA) -> float:
    """convED of dialogues A and B given each utterance's speaker role and the cosine matrix ``cosine[i, j]`` =
    cos(Enc(A_i), Enc(B_j)) (shape ``len(A) × len(B)``)."""
    n, m = len(roles_a), len(roles_b)
    if cosine.shape != (n, m):
        raise ValueError(f"cosine matrix of shape {cosine.shape} for dialogues of {n} and {m} utterances")
    previous = [float(j) for j in range(m + 1)]  # lev(0, j) = j
    for i in range(1, n + 1):
        current = [float(i)] + [0.0] * m  # lev(i, 0) = i
        for j in range(1, m + 1):
            substitute = math.inf if roles_a[i - 1] != roles_b[j - 1] else scale * (1.0 - float(cosine[i - 1, j - 1]))
            current[j] = min(current[j - 1] + 1.0, previous[j] + 1.0, previous[j - 1] + substitute)
        previous = current
    return previous[m]


def distance_matrix(dialogues: Sequence[tuple[Sequence[str], np.ndarray]], scale: float = LAMBDA) -> np.ndarray:
    """Pairwise convED of dialogues given as (speaker roles, unit-length utterance embeddings [n, d])."""
    size = len(dialogues)
    out = np.zeros((size, size))
    for a, b in itertools.combinations(range(size), 2):
        (roles_a, vectors_a), (roles_b, vectors_b) = dialogues[a], dialogues[b]
        out[a, b] = out[b, a] = conv_edit_distance(roles_a, roles_b, vectors_a @ vectors_b.T, scale)
    return out


def path_cost(distances: np.ndarray, order: Sequence[int]) -> float:
    return float(sum(distances[a, b] for a, b in zip(order, order[1:])))


def order_exact(distances: np.ndarray, target: int) -> list[int]:
    """The order of all nodes, ``target`` last, with the least summed adjacent distance (Held–Karp; on ties the
    order found first with nodes taken in index order)."""
    others = [i for i in range(len(distances)) if i != target]
    k = len(others)
    if k == 0:
        return [target]
    if k > EXACT_LIMIT:
        raise ConfigError(f"{k} references: the exact order is limited to {EXACT_LIMIT}; use ordering greedy")
    # best[mask][j]: least cost of a path over the references in mask that ends at reference j
    best = np.full((1 << k, k), math.inf)
    parent = np.full((1 << k, k), -1, dtype=int)
    for j in range(k):
        best[1 << j, j] = 0.0
    for mask in range(1, 1 << k):
        for j in range(k):
            if not mask & (1 << j) or best[mask, j] == math.inf:
                continue
            for nxt in range(k):
                if mask & (1 << nxt):
                    continue
                cost = best[mask, j] + distances[others[j], others[nxt]]
                if cost < best[mask | (1 << nxt), nxt]:
                    best[mask | (1 << nxt), nxt], parent[mask | (1 << nxt), nxt] = cost, j
    full = (1 << k) - 1
    end = min(range(k), key=lambda j: best[full, j] + distances[others[j], target])
    path, mask = [], full
    while end != -1:
        path.append(others[end])
        end, mask = parent[mask, end], mask & ~(1 << end)
    return path[::-1] + [target]


def order_greedy(distances: np.ndarray, target: int) -> list[int]:
    """The released code's order: the walk from ``target`` to the nearest unvisited node, nodes in visiting order,
    then ``target``."""
    left = [i for i in range(len(distances)) if i != target]
    path, here = [], target
    while left:
        here = min(left, key=lambda i: (distances[here, i], i))
        path.append(here)
        left.remove(here)
    return path + [target]


def order_references(distances: np.ndarray, target: int, ordering: str = "exact") -> list[int]:
    """The order of the dialogues, ``target`` last: ``exact``, ``greedy``, or ``none`` (as given: no DPI)."""
    if ordering not in ORDERINGS:
        raise ConfigError(f"ordering must be one of {', '.join(ORDERINGS)}; got {ordering!r}")
    if ordering == "none":
        return [i for i in range(len(distances)) if i != target] + [target]
    return order_exact(distances, target) if ordering == "exact" else order_greedy(distances, target)
