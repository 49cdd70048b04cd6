"""IDL's DPOC training triples (§3.3, A.2): for a reply of a person who has other dialogues, the prompt is those
dialogues, in file order and without SPI/DPI, then the current one so far (the released ``get_dpo`` takes the
person's last dialogue as the current one and every earlier one as history; here a turn of any of the person's
dialogues may be drawn, with all the others as history); chosen = the gold reply; rejected = a reply of another dialogue — ConvAI2's last distractor
(``candidates[-2]``, the gold being last; ParlAI's lists are not sorted by quality, whatever A.2 says) or, in data
without candidates, a seeded draw from the other dialogues' replies; criterion = one of :mod:`.criteria`'s kinds.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from pdg_eval.records import PARTNER, SELF

from pdg_eval_methods.common.data import Example, Session, sample_distractors

from . import criteria


@dataclass(frozen=True)
class DpocTriple:
    example: Example
    references: tuple[str, ...]  # dialogue ids before the current one
    chosen: str
    rejected: str
    criterion: criteria.Criterion


def rejected_reply(example: Example, pool: Sequence[str], seed: int) -> str:
    """ConvAI2's last distractor when the example has ranking candidates, else a seeded reply from ``pool``."""
    if example.candidates and len(example.candidates) >= 2 and example.candidates[-1] == example.response:
        return example.candidates[-2]
    return sample_distractors(example, pool, 1, seed)[0]


def build_triples(examples: Sequence[Example], person_sessions: dict[str, list[Session]],
                  objects_of: Callable[[str], set[str]], encode: Callable[[Sequence[str]], np.ndarray],
                  corpus: Sequence[str], count: int, seed: int = 13, top_m: int = criteria.TOP_M,
                  pick: str = "random") -> tuple[list[DpocTriple], dict]:
    """``count`` seeded triples from the turns of persons with at least one other dialogue, and the criterion mix.
    ``objects_of(text)`` returns the persona objects the extractor finds in a text (Ext(𝔻^u): those of the person's
    own turns in the other dialogues); ``corpus`` are the replies Fabrication draws from."""
    eligible = [e for e in examples if len(person_sessions.get(e.speaker, ())) >= 2]
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(eligible)), min(count, len(eligible))))
    corpus = list(dict.fromkeys(corpus))
    corpus_vectors = encode(corpus) if corpus else np.zeros((0, 1))
    golds = encode([eligible[i].response for i in chosen]) if chosen else np.zeros((0, 1))
    triples, drawn, built = [], Counter(), Counter()
    for index, gold_vector in zip(chosen, golds):
        example = eligible[index]
        others = [s for s in person_sessions[example.speaker] if s.dialogue_id != example.dialogue_id]
        history_objects = {o for s in others for t, r in zip(s.turns, s.roles) if r == SELF for o in objects_of(t)}
        partner = [t for s in others for t, r in zip(s.turns, s.roles) if r == PARTNER]
        partner += [t for k, t in enumerate(reversed(example.context)) if k % 2 == 0]  # the current partner's turns
        local = random.Random(f"{seed}:{example.id}")
        builders = {
            "inconsistency": lambda: criteria.inconsistency(example.response, sorted(objects_of(example.response)),
                                                            sorted(history_objects), local),
            "fabrication": lambda: criteria.fabrication(gold_vector, corpus_vectors, corpus, objects_of,
                                                        history_objects, example.response, local, top_m, pick),
            "inversion": lambda: criteria.inversion(gold_vector, encode(partner) if partner else np.zeros((0, 1)),
                                                    partner),
        }
        found = criteria.criterion(builders, local)
        if found is None:
            continue
        drawn[found.drawn] += 1
        built[found.kind] += 1
        triples.append(DpocTriple(example, tuple(s.dialogue_id for s in others), example.response,
                                  rejected_reply(example, corpus, seed), found))
    mix = {"eligible_turns": len(eligible), "sampled": len(chosen), "built": len(triples),
           "drawn": dict(sorted(drawn.items())), "kinds": dict(sorted(built.items()))}
    return triples, mix
