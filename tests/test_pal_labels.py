"""PAL's persona labels (at most one per turn) and the parse of a generated selection."""

import pytest

from pdg_eval_methods.pal.labels import (NO_LABEL, THRESHOLDS, best_above, calibrate_threshold, cosine_scores,
                                label_statistics, nli_scores, overlap_scores, parse_selection, persona_labels)
from pdg_eval.errors import ConfigError
from tests.conftest import shared_or_skip

PERSONA = ("i read twenty books a year.", "i'm a stunt double as my second job.", "i only eat kosher.",
           "i was raised in a single parent household.")


def test_labels_are_the_argmax_above_the_threshold_and_never_two():
    rows = [[0.1, 0.7, 0.3, 0.2],   # one clear sentence
            [0.2, 0.4, 0.45, 0.1],  # nothing reaches 0.5
            [0.9, 0.2, 0.9, 0.0],   # a tie: the first
            [0.5, 0.0, 0.0, 0.0],   # exactly the threshold counts
            []]                      # no persona
    assert persona_labels(rows, 0.5) == [1, NO_LABEL, 0, 0, NO_LABEL]
    assert best_above([0.3, 0.2], 0.0) == 0 and best_above([0.3, 0.2], 0.31) == NO_LABEL


def test_label_statistics():
    stats = label_statistics([1, NO_LABEL, 0, 0, NO_LABEL], [4, 4, 4, 5, 0])
    assert stats == {"turns": 5, "labelled": 3, "none": 2, "labelled_share": 0.6, "by_position": {"1": 2, "2": 1},
                     "mean_persona_sentences": 3.4}


@pytest.mark.parametrize("text, expected", [
    ("2.i'm a stunt double as my second job.", 1),      # well-formed
    (" 3. i only eat kosher", 2),                       # spaces
    ("4。i was raised in a single parent household.", 3),  # Chinese full stop
    ("9.i like cats", NO_LABEL),                        # a number out of range
    ("0.i read twenty books a year.", NO_LABEL),
    ("No personal description.", NO_LABEL),
    ("no personal description", NO_LABEL),
    ("i only eat kosher food", 2),                      # no number: the closest sentence
    ("I read twenty books a year", 0),
    ("i like to go hiking on weekends", NO_LABEL),      # nothing close
    ("", NO_LABEL),
])
def test_selection_parse(text, expected):
    assert parse_selection(text, PERSONA) == expected


def test_chinese_selection_parse():
    persona = ("我会在两个月内搬去上海。", "我最喜欢的乐队是黑豹乐队。")
    assert parse_selection("2。我最喜欢的乐队是黑豹乐队。", persona, "zh") == 1
    assert parse_selection("无需个性化信息。", persona, "zh") == NO_LABEL
    assert parse_selection("我最喜欢的乐队是黑豹乐队", persona, "zh") == 1


def test_overlap_is_the_share_of_the_response_content_words_in_each_sentence():
    # content words of the response (parlai-normalised, scikit-learn stop words out): read, ve, 20, books, year
    scores = overlap_scores(PERSONA, "i rather read , i've read about 20 books this year .")
    assert scores == [0.6, 0.0, 0.0, 0.0]  # read, books, year: 3 of 5
    assert overlap_scores(PERSONA, "the . ,") == [0.0] * 4  # nothing left to match
    zh = overlap_scores(("我喜欢黑豹乐队。", "我在加油站工作。"), "黑豹乐队很好听", "zh")
    assert zh[0] > zh[1] == 0.0


def test_nli_and_cosine_scores_rank_the_entailed_sentence_first():
    response = "i rather read , i've read about 20 books this year ."
    pairs = [(sentence, response) for sentence in PERSONA]
    entail = nli_scores(pairs, "pdg-eval/nli-minilm-l6")
    assert max(range(4), key=entail.__getitem__) == 0 and entail[0] > 0.5 > max(entail[1:])
    cosine = cosine_scores(pairs, "sentence-transformers/all-MiniLM-L6-v2")
    assert max(range(4), key=cosine.__getitem__) == 0
    assert cosine[0] == pytest.approx(cosine_scores(pairs[:1], "sentence-transformers/all-MiniLM-L6-v2")[0], abs=1e-6)


def test_nli_labels_refuse_a_response_first_scorer(tmp_path, monkeypatch):
    from pdg_eval.models import runtime

    monkeypatch.setattr(runtime.ModelFolder, "premise_order", property(lambda self: "response_first"))
    with pytest.raises(ConfigError, match="trained response_first; PAL's labels feed the persona sentence first"):
        nli_scores([("a", "b")], "pdg-eval/nli-minilm-l6")


def test_calibrate_threshold_maximises_accuracy():
    # scores 0.9, 0.8 positive; 0.7 negative; 0.6 positive; 0.1 negative -> best cut between 0.8 and 0.7 (or 0.6/0.1)
    threshold, accuracy = calibrate_threshold([0.9, 0.8, 0.7, 0.6, 0.1], [True, True, False, True, False])
    assert accuracy == pytest.approx(0.8) and threshold == pytest.approx(0.35)  # the lowest of the tied best cuts
    assert calibrate_threshold([0.5, 0.5], [True, False]) == (0.5, 0.5)  # ties cannot be split
    assert calibrate_threshold([0.2, 0.4], [False, False])[0] > 0.4  # nothing called positive
    with pytest.raises(ValueError):
        calibrate_threshold([0.1], [True, False])


def test_shipped_thresholds_are_the_calibrated_ones():
    from pdg_eval.models.runtime import default_sentence_encoder
    from pdg_eval.scorers.nli import read_dnli_pairs

    pairs = read_dnli_pairs(shared_or_skip("data", "consistency", "dnli_style_pairs", "nli-valid.txt"))
    assert len(pairs) == 3158
    positive = [p.label == 2 for p in pairs]
    overlap = [overlap_scores([p.premise], p.hypothesis)[0] for p in pairs]
    threshold, accuracy = calibrate_threshold(overlap, positive)
    assert round(threshold, 4) == THRESHOLDS["overlap"] and round(accuracy, 3) == 0.819
    cosine = cosine_scores([(p.premise, p.hypothesis) for p in pairs], default_sentence_encoder())
    threshold, accuracy = calibrate_threshold(cosine, positive)
    assert round(threshold, 4) == THRESHOLDS["cosine"] and round(accuracy, 3) == 0.836
