"""Persona-consistency aggregations over classifier labels.

Labels are canonical NLI ids: 0 = contradiction, 1 = neutral, 2 = entailment. A model's own label
order is mapped onto these by :func:`pdg_eval.models.nli_labels.canonical_label_map` (from its ``id2label``)
or given explicitly.

C-score conventions (one label per (response, persona sentence) pair):

- ``paml_sum``: per response the sum of +1/0/−1 over its persona sentences, mean over responses
  (HLTCHKUST/PAML@35b3a3e:utils/load_bert.py:360-366, model/common_layer.py:648,654);
- ``chanliang``: sum over all pairs of (label − 1) divided by the number of responses
  (ChanLiang/PersonaClassifier@bf0e819:cal_consistency_score.py:16-100; its hard-coded 7512 is not copied);
- ``pal_max``: per response the maximum of (label − 1), mean (kylokano/PAL@cc8b8b5:decode_lora.py:290-373);
- ``idl_pairwise``: over all pairs, Con = share with label > 0, Coh-Con = share with label == 2
  (steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:124-185).

CLV/MORPHEUS triple classifier (one 3-way label per (persona, context, response)), two mappings:

- ``released``: consistency = (#1 + #2)/N, consistency-coherence = #2/N, as the released scorers count
  (Toyhom/CLV@a4c7bfe:Metrics.py:131-142);
- ``training``: what the training labels imply (0 = coherent and consistent, 1 = neither, 2 = consistent
  only; Toyhom/CLV@8399b56:Consis_Model.py:48-71): consistency = (#0 + #2)/N, consistency-coherence = #0/N.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..errors import ConfigError
from ..models.nli_labels import CONTRADICTION, ENTAILMENT


def paml_sum(labels: Sequence[Sequence[int]]) -> dict[str, float]:
    """Per response the sum of (label − 1) over its persona sentences, mean over responses."""
    return {"c-score": sum(sum(label - 1 for label in row) for row in labels) / len(labels) if labels else 0.0}


def chanliang_total(labels: Sequence[Sequence[int]]) -> dict[str, float]:
    """The sum of (label − 1) over all pairs divided by the number of responses."""
    return {"c-score": sum(label - 1 for row in labels for label in row) / len(labels) if labels else 0.0}


def pal_max(labels: Sequence[Sequence[int]]) -> dict[str, float]:
    """Per response the maximum of (label − 1), mean over responses."""
    return {"c-score": sum(max(label - 1 for label in row) if row else 0 for row in labels) / len(labels)
            if labels else 0.0}


def idl_pairwise(labels: Sequence[Sequence[int]]) -> dict[str, float]:
    """Over all pairs: Con = share not contradicted, Coh-Con = share entailed."""
    pairs = [label for row in labels for label in row]
    if not pairs:
        return {"con": 0.0, "coh-con": 0.0}
    return {"con": sum(1 for x in pairs if x > CONTRADICTION) / len(pairs),
            "coh-con": sum(1 for x in pairs if x == ENTAILMENT) / len(pairs)}


#: C-score aggregations by convention name
C_SCORE_AGGREGATIONS: dict[str, Callable[[Sequence[Sequence[int]]], dict[str, float]]] = {
    "paml_sum": paml_sum, "chanliang": chanliang_total, "pal_max": pal_max, "idl_pairwise": idl_pairwise}


def c_score(labels: Sequence[Sequence[int]], aggregation: str) -> dict[str, float]:
    """C-score from canonical labels, one row per response (one label per persona sentence)."""
    if aggregation not in C_SCORE_AGGREGATIONS:
        raise ConfigError(f"unknown C-score aggregation {aggregation!r}; choose from {', '.join(C_SCORE_AGGREGATIONS)}")
    return C_SCORE_AGGREGATIONS[aggregation](labels)


def label_counts(labels: Sequence[int]) -> list[int]:
    """How many responses the triple classifier put in each of its three classes."""
    return [sum(1 for x in labels if x == k) for k in (0, 1, 2)]


def released_triple_scores(labels: Sequence[int]) -> dict[str, float]:
    """Consistency = (#1 + #2)/N, consistency-coherence = #2/N, as the released scorers count."""
    n, counts = len(labels), label_counts(labels)
    if n == 0:
        return {"consistency": 0.0, "consistency-coherence": 0.0}
    return {"consistency": (counts[1] + counts[2]) / n, "consistency-coherence": counts[2] / n}


def training_triple_scores(labels: Sequence[int]) -> dict[str, float]:
    """Consistency = (#0 + #2)/N, consistency-coherence = #0/N: what the training labels mean."""
    n, counts = len(labels), label_counts(labels)
    if n == 0:
        return {"consistency": 0.0, "consistency-coherence": 0.0}
    return {"consistency": (counts[0] + counts[2]) / n, "consistency-coherence": counts[0] / n}


#: triple-classifier label mappings by name
TRIPLE_MAPPINGS = {"released": released_triple_scores, "training": training_triple_scores}


def triple_scores(labels: Sequence[int], mapping: str = "released") -> dict[str, float]:
    """Con.Score / Coh-Con.Score from one 3-way triple-classifier label per response."""
    if mapping not in TRIPLE_MAPPINGS:
        raise ConfigError(f"unknown label mapping {mapping!r}; choose from {', '.join(TRIPLE_MAPPINGS)}")
    return TRIPLE_MAPPINGS[mapping](labels)
