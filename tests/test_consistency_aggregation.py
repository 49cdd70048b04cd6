"""Golden rows F1–F5: C-score and Con/Coh-Con aggregations from the given label matrices."""

from __future__ import annotations

import pytest

from pdg_eval.errors import ConfigError
from pdg_eval.metrics.consistency import c_score, triple_scores
from pdg_eval.models.nli_labels import canonical_label_map


def test_c_score_rows(golden, golden_inputs):
    labels = golden_inputs["auxiliary_inputs"]["F_nli_labels_per_pair"]["value"]
    g = golden["consistency_aggregation"]
    assert c_score(labels, "paml_sum")["c-score"] == g["F1_paml_c_score_sum_then_mean"]["value"]
    assert c_score(labels, "chanliang")["c-score"] == g["F2_chanliang_c_score_total_over_n"]["value"]
    assert c_score(labels, "pal_max")["c-score"] == g["F3_pal_c_score_max_then_mean"]["value"]
    f4 = g["F4_idl_pairwise_con_coh_con"]["value"]
    assert c_score(labels, "idl_pairwise") == {"con": f4["con(label>0)"], "coh-con": f4["coh_con(label==2)"]}


def test_triple_rows(golden, golden_inputs):
    labels = golden_inputs["auxiliary_inputs"]["F5_triple_classifier_labels"]["value"]
    assert triple_scores(labels, "released") == golden["consistency_aggregation"]["F5_clv_morpheus_triple_classifier"]["value"]
    # the mapping the training labels imply: 0 = coherent+consistent, 2 = consistent only
    assert triple_scores(labels, "training") == {"consistency": 0.6, "consistency-coherence": 0.2}


def test_label_maps():
    assert canonical_label_map({0: "CONTRADICTION", 1: "entailment", 2: "neutral"}) == {0: 0, 1: 2, 2: 1}
    assert canonical_label_map({0: "negative", 1: "neutral", 2: "positive"}) == {0: 0, 1: 1, 2: 2}
    with pytest.raises(ConfigError, match="cannot read NLI label 'LABEL_0'"):
        canonical_label_map({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(ConfigError, match="unknown C-score aggregation"):
        c_score([[1]], "mean")
