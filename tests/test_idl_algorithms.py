"""IDL's data algorithms: convED and the reference order (DPI), the dialogue groups and references (SPI), the
persona-extractor data and parse."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from pdg_eval_methods.idl import conved, extractor, spi
from pdg_eval.errors import ConfigError
from tests.conftest import shared_or_skip


def unit(*rows):
    array = np.asarray(rows, dtype=float)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


# -- convED ----------------------------------------------------------------------------------------------------------

def test_conved_base_case_insertions_and_deletions():
    assert conved.conv_edit_distance([], ["p", "s"], np.zeros((0, 2))) == 2.0  # lev(0, j) = j
    assert conved.conv_edit_distance(["p", "s", "p"], [], np.zeros((3, 0))) == 3.0
    same = np.ones((2, 2))
    assert conved.conv_edit_distance(["p", "s"], ["p", "s"], same) == 0.0  # identical utterances substitute for free


def test_conved_substitution_is_lambda_times_one_minus_cosine():
    cos = np.array([[0.9]])
    assert conved.conv_edit_distance(["s"], ["s"], cos, scale=5.0) == pytest.approx(0.5)
    assert conved.conv_edit_distance(["s"], ["s"], cos, scale=1.0) == pytest.approx(0.1)
    far = np.array([[0.2]])  # 5 · 0.8 = 4 > delete + insert = 2
    assert conved.conv_edit_distance(["s"], ["s"], far, scale=5.0) == 2.0


def test_conved_never_substitutes_across_speakers():
    cos = np.array([[1.0]])
    assert conved.conv_edit_distance(["p"], ["s"], cos) == 2.0  # infinite substitution: delete + insert
    a = unit([1, 0], [0, 1])
    b = unit([0, 1], [1, 0])  # B's first utterance is A's second, said by the same speaker: delete, keep, insert
    assert conved.conv_edit_distance(["p", "s"], ["s", "p"], a @ b.T) == 2.0
    with pytest.raises(ValueError):
        conved.conv_edit_distance(["p"], ["s", "p"], cos)


def test_distance_matrix_is_symmetric_with_zero_diagonal():
    rng = np.random.default_rng(0)
    dialogues = [(["p", "s"] * 2, unit(*rng.normal(size=(4, 5)))) for _ in range(4)]
    d = conved.distance_matrix(dialogues)
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0) and np.all(d[~np.eye(4, dtype=bool)] > 0)


# -- ordering --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7])
def test_exact_order_equals_brute_force(size):
    rng = np.random.default_rng(size)
    for trial in range(5):
        points = rng.normal(size=(size, 3))
        d = np.linalg.norm(points[:, None] - points[None], axis=-1)
        target = int(rng.integers(size))
        order = conved.order_exact(d, target)
        assert order[-1] == target and sorted(order) == list(range(size))
        others = [i for i in range(size) if i != target]
        best = min(conved.path_cost(d, [*p, target]) for p in itertools.permutations(others))
        assert conved.path_cost(d, order) == pytest.approx(best)


def test_greedy_order_walks_from_the_target():
    # points on a line: 0 at 0, 1 at 1, 2 at 3, 3 at 10; target 1 -> nearest 0 (1), then 2 (3), then 3 (7)
    x = np.array([0.0, 1.0, 3.0, 10.0])
    d = np.abs(x[:, None] - x[None])
    assert conved.order_greedy(d, 1) == [0, 2, 3, 1]
    assert conved.order_exact(d, 1) == [3, 2, 0, 1]  # 7 + 3 + 1 = 11 (greedy order's cost: 3 + 1 + 9 = 13)
    assert conved.path_cost(d, [3, 2, 0, 1]) == 11.0
    with pytest.raises(ConfigError):
        conved.order_references(d, 1, "dijkstra")
    with pytest.raises(ConfigError, match="limited to 8"):
        conved.order_exact(np.zeros((10, 10)), 0)


# -- SPI -------------------------------------------------------------------------------------------------------------

def test_no_clustering_below_twice_the_cluster_count():
    vectors = unit(*np.random.default_rng(1).normal(size=(5, 4)))
    assert spi.groups(vectors) == [[0, 1, 2, 3, 4]]
    assert spi.groups(vectors[:0]) == []


def test_kmeans_groups_three_blobs_and_drops_singletons():
    rng = np.random.default_rng(2)
    centres = np.eye(4)[:3] * 10
    blobs = np.vstack([centres[c] + rng.normal(scale=0.1, size=(3, 4)) for c in range(3)])
    vectors = unit(*blobs)
    assert spi.groups(vectors, seed=1) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    lonely = np.vstack([vectors[:3], vectors[3:6], unit(np.eye(4)[3])])  # 7 dialogues, the last alone
    assert spi.groups(lonely, seed=1) == [[0, 1, 2], [3, 4, 5]]


def test_references_are_the_top_k_nearest_group_members():
    vectors = unit([1, 0], [0.9, 0.1], [0.5, 0.5], [0.1, 0.9], [0, 1])
    assert spi.references_of(0, [0, 1, 2, 3, 4], vectors, top_k=2) == (1, 2)
    assert spi.references_of(4, [0, 1, 2, 3, 4], vectors, top_k=None) == (3, 2, 1, 0)
    every = spi.assignments(vectors, targets="all", references="all")
    assert [a.target for a in every] == [0, 1, 2, 3, 4] and all(len(a.references) == 4 for a in every)
    drawn = spi.assignments(vectors, targets="random", top_k=2, seed=7)
    assert len(drawn) == 1 and len(drawn[0].references) == 2
    assert drawn == spi.assignments(vectors, targets="random", top_k=2, seed=7)  # seeded
    assert {spi.assignments(vectors, seed=s)[0].target for s in range(20)} != {drawn[0].target}
    with pytest.raises(ConfigError):
        spi.assignments(vectors, targets="first")


# -- extractor data --------------------------------------------------------------------------------------------------

def test_parse_and_sample_accuracy():
    triple = extractor.Triple("i", "have_pet", "two dogs")
    other = extractor.Triple("i", "like_activity", "work out")
    sample = extractor.Sample((extractor.Sentence("i have two dogs .", triple),
                               extractor.Sentence("i work out .", other)))
    assert sample.source == "i have two dogs .\ni work out ."
    assert sample.target == "<i, have_pet, two dogs>\n<i, like_activity, work out>"
    assert extractor.sample_correct(sample.target, sample)
    assert extractor.sample_correct("<I , have_pet,  two  dogs>\n<i,like_activity,work out>", sample)
    assert not extractor.sample_correct("<i, have_pet, two dogs>", sample)  # one missing
    assert not extractor.sample_correct("<i, have_pet, dogs>\n<i, like_activity, work out>", sample)
    assert not extractor.sample_correct(sample.target + "\n<i, job, farmer>", sample)  # one too many
    assert not extractor.sample_correct("i have_pet two dogs", sample)
    assert extractor.parse_triples("x <a, b, c> y <d,e,f>") == [extractor.Triple("a", "b", "c"),
                                                                 extractor.Triple("d", "e", "f")]


def test_persona_intensive_utterances_contain_an_object():
    objects = extractor.persona_objects([extractor.Triple("i", "have_pet", "Two Dogs"),
                                         extractor.Triple("i", "job", "nurse")])
    utterances = ["I have two dogs at home", "my nurses are kind", "i am a nurse.", "hello"]
    assert extractor.persona_intensive(utterances, objects) == ["I have two dogs at home", "i am a nurse."]


def test_personaext_sentences_split_and_stacks():
    root = shared_or_skip("data", "personaext", "splits")
    sentences = extractor.read_personaext(sorted(Path(root).glob("*/*.jsonl")))
    assert len(sentences) == 22566 and len({s.triple.relation for s in sentences}) == 76
    first = sentences[0]
    assert first.triple.object in first.text and first.triple.subject in first.text.split()
    train, valid = extractor.split_sentences(sentences)
    assert len(valid) == 2257 and len(train) + len(valid) == 22566
    assert not {s.text for s in train} & {s.text for s in valid}
    samples = extractor.stack(train[:100], seed=3)
    assert [s for sample in samples for s in sample.sentences] == train[:100]
    assert all(4 <= len(sample.sentences) <= 8 for sample in samples[:-1])
    assert math.isclose(sum(len(s.sentences) for s in samples) / len(samples), 6, abs_tol=1.5)


# -- criteria --------------------------------------------------------------------------------------------------------

def test_inconsistency_swaps_one_object_for_one_of_the_history():
    import random

    from pdg_eval_methods.idl import criteria

    gold = "i work as a farmer and i love my two dogs ."
    outs = {criteria.inconsistency(gold, ["farmer", "two dogs"], ["spaceman", "farmer"], random.Random(s))
            for s in range(20)}  # "farmer" is already in the gold: only "spaceman" can come in
    assert outs == {"i work as a spaceman and i love my two dogs .", "i work as a farmer and i love my spaceman ."}
    # an object only replaces itself as a whole word; the history's objects already in the gold are not used
    assert criteria.inconsistency("i like cats", ["cat"], ["dogs"], random.Random(0)) is None
    assert criteria.inconsistency("i like cats", ["cats"], ["cats"], random.Random(0)) is None
    assert criteria.inconsistency("I like Cats", ["cats"], ["dogs"], random.Random(0)) == "I like dogs"


def test_fabrication_states_nothing_of_the_history_and_inversion_is_the_nearest_partner_line():
    import random

    from pdg_eval_methods.idl import criteria

    corpus = ["i am a nurse", "i have a cat", "i love pizza", "the gold"]
    vectors = unit([1, 0.1], [1, 0.2], [1, 0.9], [1, 0])
    objects = dict(zip(corpus, [{"nurse"}, {"cat"}, {"pizza"}, set()])).__getitem__
    gold_vector = unit([1, 0])[0]
    picks = {criteria.fabrication(gold_vector, vectors, corpus, objects, {"Nurse"}, "the gold", random.Random(s),
                                  top_m=2) for s in range(30)}
    assert picks == {"i have a cat"}  # the nearest two are the nurse and the cat; the nurse is the person's own
    assert criteria.fabrication(gold_vector, vectors, corpus, objects, set(), "the gold", random.Random(0),
                                top_m=3, pick="nth") == "i love pizza"
    assert criteria.fabrication(gold_vector, vectors, corpus, objects, {"pizza"}, "the gold", random.Random(0),
                                top_m=3, pick="nth") is None
    partner = ["hello there", "do you like pizza", "i am a cook"]
    assert criteria.inversion(unit([0, 1])[0], unit([1, 0], [0.2, 1], [1, 1]), partner) == "do you like pizza"
    assert criteria.inversion(gold_vector, np.zeros((0, 2)), []) is None


def test_criterion_falls_through_to_the_next_kind_and_reports_both():
    import random

    from pdg_eval_methods.idl import criteria

    built = criteria.criterion({"inconsistency": lambda: None, "fabrication": lambda: "  ",
                                "inversion": lambda: "partner line"}, random.Random(3))
    assert built.text == "partner line" and built.kind == "inversion"
    kinds = [criteria.criterion({k: (lambda k=k: k) for k in criteria.KINDS}, random.Random(s)).drawn
             for s in range(300)]
    assert all(80 < kinds.count(k) < 120 for k in criteria.KINDS)  # uniform
    assert criteria.criterion({k: (lambda: None) for k in criteria.KINDS}, random.Random(0)) is None


# -- sequences -------------------------------------------------------------------------------------------------------

def test_msl_sequence_holds_references_in_order_then_the_target_and_no_persona(convai2_valid):
    from pdg_eval_methods.common.data import load_convai2, sessions
    from pdg_eval_methods.common.prompts import Formatter
    from pdg_eval_methods.common.backbones import load_backbone
    from pdg_eval_methods.idl.sequences import msl_turns, prompt_turns
    from pdg_eval.records import PARTNER, SELF

    examples = load_convai2(convai2_valid)
    found = sessions(examples)
    speaker = next(s for s in {x.speaker for x in examples}
                   if sum(v.speaker == s for v in found.values()) >= 3)
    mine = [v for v in found.values() if v.speaker == speaker][:3]
    target, references = mine[0], [mine[2], mine[1]]  # a DPI order
    turns = msl_turns(references, target, "last")
    assert [t.text for t in turns] == [*mine[2].turns, *mine[1].turns, *target.turns]
    assert [t.loss for t in turns].count(True) == 1 and turns[-1].loss and turns[-1].text == target.turns[-1]
    assert sum(t.loss for t in msl_turns(references, target, "all")) == len(target.turns) // 2
    tokenizer = load_backbone("random:tiny-llama").tokenizer
    feature = Formatter(tokenizer, "chat").conversation(turns, 4096)
    trained = tokenizer.decode([t for t, label in zip(feature["input_ids"], feature["labels"]) if label != -100])
    assert trained == target.turns[-1] + "<|im_end|>\n"
    text = tokenizer.decode(feature["input_ids"])
    persona = next(e.persona for e in examples if e.speaker == speaker)
    assert not any(sentence in text for sentence in persona)  # profile-free (the persona is never shown)
    prompt = prompt_turns(references, target.turns[:3])
    assert [t.role for t in prompt[-3:]] == [PARTNER, SELF, PARTNER] and not any(t.loss for t in prompt)
    with pytest.raises(ConfigError):
        msl_turns(references, target, "some")


def test_a_tiny_extractor_learns_the_task_format(tmp_path):
    """The extractor's training sequence and the extraction path: a tiny random LM overfitted on two samples
    writes their triples back, and the accuracy counts whole samples."""
    import torch

    from pdg_eval_methods.common.backbones import load_backbone
    from pdg_eval_methods.common.config import DecodingConfig, TrainingConfig
    from pdg_eval_methods.common.prompts import Formatter
    from pdg_eval_methods.common.training import fit_model, pad_batch

    backbone = load_backbone("random:tiny-gpt2", seed=0)
    formatter = Formatter(backbone.tokenizer)
    samples = [extractor.Sample((extractor.Sentence("i have two dogs .", extractor.Triple("i", "have_pet", "dogs")),)),
               extractor.Sample((extractor.Sentence("i am a nurse .", extractor.Triple("i", "job", "nurse")),
                                 extractor.Sentence("i like pizza .", extractor.Triple("i", "like_food", "pizza"))))]
    features = [extractor.training_feature(formatter, s, 256) for s in samples]
    cut = features[1]["labels"].count(-100)
    assert backbone.tokenizer.decode(features[1]["input_ids"][cut:]) == samples[1].target + "<|endoftext|>"
    assert "i am a nurse .\ni like pizza ." in backbone.tokenizer.decode(features[1]["input_ids"][:cut])
    config = TrainingConfig(learning_rate=3e-3, batch_size=2, max_steps=150, logging_steps=50, save_steps=1000)
    torch.manual_seed(0)
    fit = fit_model(backbone.model, features, lambda b: pad_batch(b, backbone.tokenizer.pad_token_id), config,
                    tmp_path, seed=0)
    predicted = extractor.extract(fit.model, backbone.tokenizer, formatter,
                                  [[s.text for s in sample.sentences] for sample in samples],
                                  DecodingConfig(max_new_tokens=8))
    assert predicted == [[s.triple for s in sample.sentences] for sample in samples]
    assert extractor.accuracy(predicted, samples) == 1.0
    assert extractor.accuracy([predicted[0], predicted[0]], samples) == 0.5


@pytest.fixture(scope="module")
def valid_persons(convai2_valid):
    """ConvAI2 valid: each person's whole dialogues, and a MiniLM encoder returning unit rows."""
    from pdg_eval_methods.common.data import load_convai2, sessions, sessions_by_speaker
    from pdg_eval.models.runtime import default_sentence_encoder, load_sentence_encoder

    examples = load_convai2(convai2_valid)
    found = sessions(examples)
    by_person = {person: [found[d] for d in ids] for person, ids in sessions_by_speaker(examples).items()}
    encoder = load_sentence_encoder(default_sentence_encoder())
    return examples, by_person, lambda texts: np.asarray(encoder.encode(list(texts)))


def test_plans_of_real_valid_persons(valid_persons):
    """SPI + DPI on ConvAI2 valid persons with 6-7 dialogues (clustered) and 2-3 (one group), MiniLM embeddings."""
    from pdg_eval_methods.idl.planning import PlanOptions, plan_person, spi_text
    from pdg_eval.records import SELF

    _, by_person, encode = valid_persons
    big = next(v for v in by_person.values() if len(v) >= 6)
    plans = plan_person(big, [set()] * len(big), encode, PlanOptions(targets="all"))
    ids = [s.dialogue_id for s in big]
    assert {p.target for p in plans} <= set(ids) and all(p.target not in p.references for p in plans)
    assert all(1 <= len(p.references) <= 5 and set(p.references) <= set(ids) for p in plans)
    assert plans == plan_person(big, [set()] * len(big), encode, PlanOptions(targets="all"))  # deterministic
    small = next(v for v in by_person.values() if len(v) == 3)
    plans = plan_person(small, [set()] * 3, encode, PlanOptions(targets="all"))
    assert [p.target for p in plans] == [s.dialogue_id for s in small]  # one group: each dialogue a target once
    assert all(len(p.references) == 2 for p in plans)
    greedy = plan_person(small, [set()] * 3, encode, PlanOptions(targets="all", ordering="greedy"))
    assert [set(p.references) for p in greedy] == [set(p.references) for p in plans]
    assert plan_person(small[:1], [set()], encode) == []
    # persona-intensive text: the person's turns holding an extracted object, else all of them
    session = small[0]
    mine = [t for t, r in zip(session.turns, session.roles) if r == SELF]
    word = mine[0].split()[-2]
    assert spi_text(session, {word}) == " ".join(t for t in mine if word in t.split())
    assert spi_text(session, {"zzzz"}) == " ".join(mine)


def test_dpoc_triples_on_valid_persons(valid_persons):
    from pdg_eval_methods.idl.dpoc_pairs import build_triples, rejected_reply

    every, by_person, encode = valid_persons
    examples = every[:300]
    words = lambda text: {w for w in text.lower().split() if len(w) > 5}  # noqa: E731  (a stand-in extractor)
    corpus = [e.response for e in every[:600]]
    triples, mix = build_triples(examples, by_person, words, encode, corpus, count=16, seed=5)
    assert mix["sampled"] == 16 and mix["built"] == len(triples) >= 14
    assert sum(mix["kinds"].values()) == len(triples) and set(mix["kinds"]) <= {"inconsistency", "fabrication",
                                                                                "inversion"}
    for triple in triples:
        example = triple.example
        assert triple.chosen == example.response and example.dialogue_id not in triple.references
        assert triple.rejected == example.candidates[-2] and triple.rejected != triple.chosen
        assert triple.criterion.text.strip() and triple.criterion.text != triple.chosen
        assert set(triple.references) == {s.dialogue_id for s in by_person[example.speaker]} - {example.dialogue_id}
    again, _ = build_triples(examples, by_person, words, encode, corpus, count=16, seed=5)
    assert [t.criterion for t in again] == [t.criterion for t in triples]  # seeded
    import dataclasses

    bare = dataclasses.replace(examples[0], candidates=None)
    assert rejected_reply(bare, corpus, 1) in corpus and rejected_reply(bare, corpus, 1) != bare.response
