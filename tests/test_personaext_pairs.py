"""DNLI's construction on PersonaExt triples: each class on hand-made sentences, the first-person subjects as one
person, neutrals capped at the entailments, ``--balance`` down to the rarest label, held-out sentences left out on both sides; the CLI on the real splits
shares no sentence with the NLI scorers' held-out sets."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from pdg_eval.cli.main import main
from pdg_eval.readers.personaext import Sentence, Triple, read_personaext
from pdg_eval.scorers.nli import NliExample, balance_classes, read_dnli_pairs, read_nli_source
from pdg_eval.scorers.personaext_pairs import personaext_pairs
from pdg_eval.tokenize import casefold_spaces
from tests.conftest import shared_or_skip


def sentence(text: str, subject: str, relation: str, obj: str) -> Sentence:
    return Sentence(text, Triple(subject, relation, obj))


SENTENCES = [
    sentence("i live in texas .", "i", "live_in_citystatecountry", "texas"),
    sentence("my home is in texas .", "my", "live_in_citystatecountry", "Texas"),  # same triple: "my" is "i"
    sentence("i live in ohio .", "i", "live_in_citystatecountry", "ohio"),  # single-valued: contradicts texas
    sentence("i have two dogs .", "i", "have_pet", "two dogs"),  # have_pet is not single-valued
    sentence("i have a cat .", "me", "have_pet", "a cat"),
    sentence("my dad lives in ohio .", "my dad", "live_in_citystatecountry", "ohio"),  # another person
]


def test_each_class_follows_the_triples():
    pairs = personaext_pairs(SENTENCES, seed=1)
    by_label = {label: {(p.premise, p.hypothesis) for p in pairs if p.label == label} for label in (0, 1, 2)}
    assert by_label[2] == {("my home is in texas .", "i live in texas ."), ("i live in texas .", "my home is in texas .")}
    assert ("i live in texas .", "i live in ohio .") in by_label[0] or ("my home is in texas .", "i live in ohio .") in by_label[0]
    contradicted = {h for _, h in by_label[0]}
    assert contradicted == {"i live in texas .", "my home is in texas .", "i live in ohio ."}  # never the pets or dad
    assert not any("dad" in p or "dad" in h for p, h in by_label[0] | by_label[2])
    for premise, hypothesis in by_label[1]:  # same person, another relation
        relation = {s.text: s.triple.relation for s in SENTENCES}
        assert relation[premise] != relation[hypothesis] and "dad" not in premise + hypothesis
    assert len(by_label[1]) <= len(by_label[2])  # neutrals capped at the entailments
    assert personaext_pairs(SENTENCES, seed=1) == pairs  # seeded


def test_held_out_sentences_are_left_out_on_both_sides():
    pairs = personaext_pairs(SENTENCES, exclude=["I live in  Texas ."], seed=1)
    assert not any("i live in texas ." in (p.premise, p.hypothesis) for p in pairs)
    assert not [p for p in pairs if p.label == 2]  # its only same-triple partner is gone


def test_balance_samples_every_label_down_to_the_rarest():
    pairs = [NliExample(f"p{i}", f"h{i}", label) for i, label in enumerate([0, 1, 1, 1, 2, 2])]
    balanced = balance_classes(pairs, seed=3)
    assert [e.label for e in balanced] == [0, 1, 2] and balanced[0] == pairs[0]
    assert balance_classes(pairs, seed=3) == balanced and balance_classes([]) == []


def test_cli_on_the_real_splits_shares_no_sentence_with_the_held_out_sets(tmp_path, capsys):
    root = shared_or_skip("data", "personaext", "splits")
    held = [shared_or_skip("data", "consistency", "dnli_style_pairs", "nli-valid.txt"),
            shared_or_skip("data", "consistency", "dnli_triples_convai2", "valid_both_original_final.txt")]
    out = tmp_path / "pairs.txt"
    assert main(["scorers", "pairs", "--personaext", str(root), "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    pairs = read_dnli_pairs(out)
    assert report["n"] == len(pairs) and report["excluded"] == [str(p) for p in held]
    counts = Counter(p.label for p in pairs)
    assert counts[0] == report["contradiction"] > 1000 and counts[1] == counts[2] == report["entailment"]
    trained = {casefold_spaces(t) for p in pairs for t in (p.premise, p.hypothesis)}
    for path in held:
        assert not trained & {casefold_spaces(t) for e in read_nli_source(path) for t in (e.premise, e.hypothesis)}
    assert len(read_personaext(sorted(root.glob("*/*.jsonl")))) == 22566
    balanced_out = tmp_path / "balanced.txt"
    assert main(["scorers", "pairs", "--personaext", str(root), "--balance", "--out", str(balanced_out)]) == 0
    balanced = read_dnli_pairs(balanced_out)
    assert json.loads(capsys.readouterr().out)["balanced"] is True
    assert Counter(p.label for p in balanced) == {0: counts[0], 1: counts[0], 2: counts[0]}
    assert {p for p in balanced if p.label == 0} == {p for p in pairs if p.label == 0}  # the rarest label: all kept
    assert set(balanced) <= set(pairs)
    assert main(["scorers", "pairs", "--personaext", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    assert main(["scorers", "pairs", "--personaext", str(root), "--triples", str(held[1]),
                 "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
