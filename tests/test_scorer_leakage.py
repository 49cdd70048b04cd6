"""No evaluation item leaks into the data the consistency scorers train on: the default training sources of
`pdg-eval scorers train nli|cohcon`, as the recipes filter them, share no utterance (NLI) and no persona, context or
response (Con/Coh-Con) with the held-out sets their accuracy is reported on."""

from __future__ import annotations

import pytest

from pdg_eval.cli.scorers import default_sources
from pdg_eval.scorers.cohcon import CohConRecipe, clv_examples, training_triples
from pdg_eval.scorers.nli import NliRecipe, read_nli_source, training_pairs
from pdg_eval.tokenize import casefold_spaces
from tests.conftest import shared_or_skip


@pytest.fixture(scope="module")
def nli_data():
    shared_or_skip("data", "consistency")
    recipe = NliRecipe(backbone="unused", train=tuple(default_sources("nli", "train")),
                       valid=tuple(default_sources("nli", "valid")))
    return recipe, *training_pairs(recipe)


def test_nli_training_pairs_share_no_utterance_with_held_out_sets(nli_data):
    recipe, every, kept = nli_data
    assert [p.rsplit("/", 1)[-1] for p in recipe.train] == ["nli-train.txt", "test_both_original_final.txt"]
    assert [p.rsplit("/", 1)[-1] for p in recipe.valid] == ["nli-valid.txt", "valid_both_original_final.txt"]
    trained = {casefold_spaces(e.hypothesis) for pairs in kept for e in pairs}
    for path in recipe.valid:
        held_out = read_nli_source(path)
        assert len(held_out) > 3000
        assert not trained & {casefold_spaces(e.hypothesis) for e in held_out}
        assert not {(e.premise, e.hypothesis) for pairs in kept for e in pairs} & {(e.premise, e.hypothesis)
                                                                                    for e in held_out}
    # what the filter removed: the few generic utterances RCDG's training file shares with ConvAI2 valid
    assert [len(a) for a in every] == [8307, 18389] and [len(b) for b in kept] == [8268, 18280]


def test_nli_rebuilt_held_out_pairs_are_deterministic_and_three_way():
    path = shared_or_skip("data", "consistency", "dnli_triples_convai2", "valid_both_original_final.txt")
    pairs = read_nli_source(path)
    assert pairs == read_nli_source(path) and {e.label for e in pairs} == {0, 1, 2}


def test_cohcon_training_triples_share_nothing_with_convai2_valid():
    shared_or_skip("data", "convai2_train_sample")
    recipe = CohConRecipe(backbone="unused", train=tuple(default_sources("cohcon", "train")),
                          valid=default_sources("cohcon", "valid")[0])
    held_out, sources, kept = training_triples(recipe)
    assert len(held_out) == 1000 and sum(map(len, held_out)) == 7801
    assert len([e for d in held_out for e in clv_examples(d)]) == 21403
    assert [len(s) for s in sources] == [1356, 1936]  # the train sample's dialogues; both speakers of ConvAI2 test
    assert [len(e) for e in kept] == [25530, 36777]
    personas = {tuple(casefold_spaces(s) for s in turn[0]) for d in held_out for turn in d}
    sentences = {casefold_spaces(t) for d in held_out for _, src, tgt in d for t in (src, tgt)}
    for examples in kept:
        assert examples and not any(tuple(casefold_spaces(s) for s in e.persona) in personas for e in examples)
        assert not {casefold_spaces(e.response) for e in examples} & sentences
        assert not {casefold_spaces(e.context) for e in examples} & sentences


def test_synthetic_persona_chat_triples_share_nothing_with_convai2_valid():
    folder = shared_or_skip("data", "synthetic_persona_chat")
    shared_or_skip("data", "convai2_train_sample")
    files = tuple(str(folder / f"Synthetic-Persona-Chat_{split}.csv") for split in ("valid", "test"))
    recipe = CohConRecipe(backbone="unused", train=files, valid=default_sources("cohcon", "valid")[0])
    held_out, sources, kept = training_triples(recipe)
    # both users of the 1,000 and 968 conversations, less four sides without a reply or a persona
    assert [len(s) for s in sources] == [2000, 1932]
    assert [len([e for d in s for e in clv_examples(d)]) for s in sources] == [76202, 72786]
    assert [len(e) for e in kept] == [72510, 69400]  # "hi !", "hello ." and the like are ConvAI2 valid lines too
    sentences = {casefold_spaces(t) for d in held_out for _, src, tgt in d for t in (src, tgt)}
    for examples in kept:
        assert not {casefold_spaces(e.response) for e in examples} & sentences
        assert not {casefold_spaces(e.context) for e in examples} & sentences
