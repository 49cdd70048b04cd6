"""DNLI-style pairs rebuilt from triple-annotated ConvAI2 dialogues (pdg_eval.scorers.dnli_rebuild)."""

from __future__ import annotations

from collections import Counter

import pytest

from pdg_eval.cli.main import main
from pdg_eval.errors import InputError
from pdg_eval.scorers.dnli_rebuild import read_triple_dialogues, rebuild_pairs
from pdg_eval.scorers.nli import NliExample, read_dnli_pairs
from tests.conftest import shared_or_skip

DIALOGUE = """partner's persona: i am 30 years old.\t['i', 'has_age', '30']
your persona: i have a dog.\t['i', 'have_pet', 'dog']
your persona: i am a nurse.\t['i', 'has_profession', 'nurse']
1\thello
2\tmy dog is cute .\t['i', 'have_pet', 'dog']
3\ti am 25 .\t['i', 'has_age', '25']
4\tnothing here
"""


def test_labels_on_a_hand_made_dialogue(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text(DIALOGUE + DIALOGUE.replace("30", "40"))  # two dialogues
    partner, me = read_triple_dialogues(path)[0]
    assert [u for u, _ in partner.utterances] == ["hello", "i am 25 ."]
    assert [s for s, _ in me.persona] == ["i have a dog.", "i am a nurse."]
    pairs = rebuild_pairs([path])
    # same triple -> entailment; no shared relation -> neutral; has_age with another value, from either
    # dialogue -> contradiction; the second dialogue repeats the first's pairs, which are kept once
    assert sorted(pairs, key=lambda e: (e.label, e.premise)) == [
        NliExample("i am 30 years old.", "i am 25 .", 0), NliExample("i am 40 years old.", "i am 25 .", 0),
        NliExample("i am a nurse.", "my dog is cute .", 1), NliExample("i have a dog.", "my dog is cute .", 2)]
    assert all(e.hypothesis != "my dog is cute ." for e in rebuild_pairs([path], exclude=["My dog is  cute ."]))
    assert rebuild_pairs([path], seed=5) == rebuild_pairs([path], seed=5)


def test_bad_triple_is_located(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("your persona: i am tall.\t['i', 'physical_attribute'\n")
    with pytest.raises(InputError, match=r"d.txt:1: triple: not a \['subject'"):
        read_triple_dialogues(path)


def test_rebuilt_pairs_from_the_convai2_test_file(tmp_path, capsys):
    shared_or_skip("data", "consistency", "dnli_triples_convai2", "test_both_original_final.txt")
    out = tmp_path / "pairs.txt"
    assert main(["scorers", "pairs", "--out", str(out)]) == 0
    pairs = read_dnli_pairs(out)
    assert Counter(e.label for e in pairs) == {2: 7056, 1: 7323, 0: 3984}
    held_out = {" ".join(e.hypothesis.lower().split()) for e in read_dnli_pairs(
        shared_or_skip("data", "consistency", "dnli_style_pairs", "nli-valid.txt"))}
    assert not {" ".join(e.hypothesis.lower().split()) for e in pairs} & held_out
    valid_gold = shared_or_skip("data", "convai2_train_sample", "tgt-val.txt").read_text().splitlines()
    assert len({e.hypothesis for e in pairs} & set(valid_gold)) < 20  # ConvAI2 valid (the evaluation split) is not used
