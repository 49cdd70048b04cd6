"""NLI pairs built by Dialogue NLI's construction (Welleck et al., ACL 2019, §3) from PersonaExt's relation triples
(:mod:`pdg_eval.readers.personaext`): more training pairs for the NLI scorer, contradictions above all.

For every sentence (the hypothesis), at most one premise of each class, chosen with a seeded generator:

- **entailment**: another sentence with the same triple (subject, relation and object, casefolded);
- **contradiction**: another sentence with the same subject and a relation that admits one value per person
  (:data:`~pdg_eval.scorers.dnli_rebuild.EXCLUSIVE_RELATIONS`: age, marital status, where one lives, a favourite, …)
  but another object (DNLI's "entity swap");
- **neutral**: another sentence of the same subject with another relation (DNLI's "relation swap"); neutrals are
  the commonest by far, so a seeded sample of as many as there are entailments is kept.

The first-person subjects (``i``, ``my``, ``me``, ``mine``) are one person. Sentences that occur in a held-out set
(``exclude``, casefolded) are left out on both sides, so evaluation stays held out.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Iterable, Sequence

from ..readers.personaext import Sentence
from ..tokenize import casefold_spaces
from .dnli_rebuild import EXCLUSIVE_RELATIONS
from .nli import NliExample

FIRST_PERSON = frozenset({"i", "my", "me", "mine"})
SELF = "<self>"


def subject_key(subject: str) -> str:
    return SELF if subject in FIRST_PERSON else subject


def personaext_pairs(sentences: Sequence[Sentence], exclude: Iterable[str] = (), seed: int = 13) -> list[NliExample]:
    """Entailment, contradiction and neutral pairs (in that order) from PersonaExt sentences; see the module
    docstring."""
    rng = random.Random(seed)
    held_out = {casefold_spaces(text) for text in exclude}
    kept = [s for s in sentences if casefold_spaces(s.text) not in held_out]
    keys = [(subject_key(subject), relation, obj) for subject, relation, obj in (s.triple.key() for s in kept)]
    same_triple: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    same_slot: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    by_subject: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for sentence, (subject, relation, obj) in zip(kept, keys):
        same_triple[(subject, relation, obj)].append(sentence.text)
        same_slot[(subject, relation)].append((obj, sentence.text))
        by_subject[subject].append((relation, sentence.text))
    entailed, contradicted, neutral = [], [], []
    for sentence, (subject, relation, obj) in zip(kept, keys):
        same = [text for text in same_triple[(subject, relation, obj)] if text != sentence.text]
        if same:
            entailed.append(NliExample(rng.choice(same), sentence.text, 2))
        if relation in EXCLUSIVE_RELATIONS:
            clashes = [text for other, text in same_slot[(subject, relation)] if other != obj]
            if clashes:
                contradicted.append(NliExample(rng.choice(clashes), sentence.text, 0))
        unrelated = _other_relation(by_subject[subject], relation, rng)
        if unrelated is not None:
            neutral.append(NliExample(unrelated, sentence.text, 1))
    neutral = rng.sample(neutral, min(len(neutral), len(entailed)))
    return entailed + contradicted + neutral


def _other_relation(candidates: Sequence[tuple[str, str]], relation: str, rng: random.Random,
                    tries: int = 32) -> str | None:
    """A random sentence of ``candidates`` with another relation (None when every one shares it)."""
    for _ in range(tries):
        other, text = rng.choice(candidates)
        if other != relation:
            return text
    others = [text for other, text in candidates if other != relation]
    return rng.choice(others) if others else None
