"""Longest common subsequence helpers shared by the ROUGE-L variants."""

from __future__ import annotations

from typing import Hashable, Sequence


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """LCS length by the bit-parallel algorithm (Allison & Dix 1986; Hyyrö 2004), O(|a|) big-int ops."""
    if not a or not b:
        return 0
    masks: dict[Hashable, int] = {}
    for i, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(b)) - 1
    v = full
    for token in a:
        m = masks.get(token)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(b) - bin(v).count("1")


def lcs_token_set(x: Sequence[str], y: Sequence[str]) -> set[str]:
    """Tokens of the LCS that pltrdy ``rouge`` 1.0.1 ``_recon_lcs(x, y)`` reconstructs (same table,
    same backtracking tie rule: diagonal on a match, else up if ``T[i-1][j] > T[i][j-1]``, else left)."""
    common = set(x) & set(y)
    if len(common) < 2:  # an LCS is made of common tokens only
        return common
    if [t for t in x if t in common] == [t for t in y if t in common]:  # that sequence is the only LCS's tokens
        return common
    n, m = len(x), len(y)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        xi = x[i - 1]
        row, prev = table[i], table[i - 1]
        for j in range(1, m + 1):
            if xi == y[j - 1]:
                row[j] = prev[j - 1] + 1
            else:
                up, left = prev[j], row[j - 1]
                row[j] = up if up > left else left
    out: set[str] = set()
    i, j = n, m
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            out.add(x[i - 1])
            i -= 1
            j -= 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return out
