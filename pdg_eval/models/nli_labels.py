"""Canonical NLI label ids and a classifier's own label order mapped onto them (MNLI / DNLI naming:
contradiction|negative, neutral, entailment|positive; Welleck et al. 2019, ``facebookresearch/ParlAI`` DNLI), and the
premise orders a pdg-eval NLI scorer records in its ``manifest.json``."""

from __future__ import annotations

from typing import Mapping

from ..errors import ConfigError

#: what a pdg-eval NLI scorer's ``manifest.json`` names itself (``scorer``)
NLI_SCORER = "pdg-eval NLI (C-score)"
CONTRADICTION, NEUTRAL, ENTAILMENT = 0, 1, 2
#: label names in canonical id order
LABELS = ("contradiction", "neutral", "entailment")
#: ``--premise-order`` / the C-score ``premise=`` option → the order a scorer's manifest records (``both``: every
#: training pair in both orders)
PREMISE_ORDERS = {"persona": "persona_first", "response": "response_first", "both": "both"}
_CANONICAL_NAMES = {"contradiction": CONTRADICTION, "negative": CONTRADICTION, "neutral": NEUTRAL,
                    "entailment": ENTAILMENT, "positive": ENTAILMENT}


def canonical_label_map(id2label: Mapping[int, str]) -> dict[int, int]:
    """Map a model's label ids to canonical ids from its label names (MNLI/DNLI naming)."""
    out = {}
    for idx, name in id2label.items():
        key = str(name).strip().lower()
        if key not in _CANONICAL_NAMES:
            raise ConfigError(f"cannot read NLI label {name!r}; give label_map= explicitly "
                              "(e.g. 0:contradiction,1:neutral,2:entailment)")
        out[int(idx)] = _CANONICAL_NAMES[key]
    if sorted(out.values()) != [0, 1, 2]:
        raise ConfigError(f"labels {dict(id2label)} do not name contradiction, neutral and entailment once each")
    return out


def fits_premise(trained_order: str | None, premise: str) -> bool:
    """Whether a scorer trained on ``trained_order`` (None: unknown) may judge pairs fed with ``premise`` first."""
    return trained_order in (None, "both", PREMISE_ORDERS[premise])
