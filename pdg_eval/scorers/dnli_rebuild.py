"""Rebuild DNLI-style (persona sentence, utterance) pairs from ConvAI2 dialogues annotated with DNLI triples.

Input: ``jasonwu0731/GettingToKnowYou@85108fb:data/ConvAI2/*_both_original_final.txt`` — every persona sentence
and utterance followed by its ``['subject', 'relation', 'object']`` triples (the schema of Dialogue NLI,
Welleck et al., ACL 2019). Utterances are numbered per line within a dialogue; odd lines are the partner's,
even lines the speaker of ``your persona``.

Labels follow DNLI's construction (Welleck et al. 2019, §3):

- **entailment**: an utterance and a persona sentence of the *same speaker* that carry the same triple;
- **neutral**: an utterance with triples and a persona sentence of the same speaker whose triples share no
  relation with the utterance's (DNLI's "relation swap" neutrals);
- **contradiction**: same subject and relation, different object, for relations that admit one value per person
  (age, marital status, where one lives, a favourite, ...: :data:`EXCLUSIVE_RELATIONS`); the persona sentence is
  drawn from any dialogue of the file (DNLI's "entity swap").

Each utterance gives at most one entailment and one neutral pair and up to ``contradictions_per_utterance``
contradictions (they are the rarest), chosen with a seeded generator, so the output is deterministic.
Utterances that also occur in a held-out file (``exclude``) are dropped, so evaluation stays held out.
"""

from __future__ import annotations

import ast
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from ..errors import InputError
from ..inputs import iter_lines
from ..tokenize import casefold_spaces
from .nli import NliExample

Triple = tuple[str, str, str]

EXCLUSIVE_RELATIONS = frozenset({
    "has_age", "marital_status", "gender", "job_status", "school_status", "place_origin",
    "live_in_citystatecountry", "employed_by_company", "favorite_color", "favorite_season", "favorite_sport",
    "favorite_food", "favorite_drink", "favorite_animal", "favorite_music_artist", "favorite_movie", "favorite_show",
    "favorite_place", "favorite_activity", "favorite_hobby", "favorite_music", "favorite_book"})


@dataclass
class Speaker:
    persona: list[tuple[str, frozenset[Triple]]] = field(default_factory=list)
    utterances: list[tuple[str, frozenset[Triple]]] = field(default_factory=list)


def _triples(cells: Sequence[str], path: str, number: int) -> frozenset[Triple]:
    out = set()
    for cell in cells:
        try:
            value = ast.literal_eval(cell)
        except (ValueError, SyntaxError):
            raise InputError(path, number, "triple", f"not a ['subject', 'relation', 'object'] list: {cell[:60]!r}") from None
        if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)):
            raise InputError(path, number, "triple", f"expected three strings, got {cell[:60]!r}")
        if value[1] and value[2]:
            out.add((value[0].strip(), value[1].strip(), value[2].strip()))
    return frozenset(out)


def read_triple_dialogues(path: str | Path) -> list[tuple[Speaker, Speaker]]:
    """Dialogues as (partner, self) speakers, each with its persona sentences and utterances with triples."""
    source, dialogues = str(path), []
    partner, me, last_number = Speaker(), Speaker(), 0
    for number, text in iter_lines(path):
        if not text.strip():
            continue
        cells = text.split("\t")
        head = cells[0]
        if head.startswith(("partner's persona:", "your persona:")):
            if last_number:  # persona lines after utterances open a new dialogue
                dialogues.append((partner, me))
                partner, me, last_number = Speaker(), Speaker(), 0
            speaker = partner if head.startswith("partner") else me
            speaker.persona.append((head.split(":", 1)[1].strip(), _triples(cells[1:], source, number)))
            continue
        if not head.isdigit() or len(cells) < 2:
            raise InputError(source, number, "record", "expected a persona line or 'N<TAB>utterance<TAB>triples...'")
        last_number = int(head)
        (partner if last_number % 2 else me).utterances.append((cells[1].strip(), _triples(cells[2:], source, number)))
    if last_number:
        dialogues.append((partner, me))
    return dialogues


def rebuild_pairs(paths: Iterable[str | Path], exclude: Iterable[str] = (), seed: int = 13,
                  contradictions_per_utterance: int = 4) -> list[NliExample]:
    """DNLI-style pairs (premise = persona sentence) from triple-annotated dialogues; see the module docstring."""
    rng = random.Random(seed)
    held_out = {casefold_spaces(u) for u in exclude}
    speakers = [s for path in paths for dialogue in read_triple_dialogues(path) for s in dialogue]
    by_slot: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)  # (subject, relation) -> (object, sentence)
    for speaker in speakers:
        for sentence, triples in speaker.persona:
            for subj, rel, obj in triples:
                if rel in EXCLUSIVE_RELATIONS:
                    by_slot[(subj, rel)].append((obj, sentence))
    for slot in by_slot:
        by_slot[slot] = sorted(set(by_slot[slot]))
    out, seen = [], set()

    def add(premise: str, hypothesis: str, label: int) -> None:
        if (premise, hypothesis) not in seen:
            seen.add((premise, hypothesis))
            out.append(NliExample(premise, hypothesis, label))

    for speaker in speakers:
        for utterance, triples in speaker.utterances:
            if not triples or casefold_spaces(utterance) in held_out:
                continue
            relations = {rel for _, rel, _ in triples}
            entailed = [s for s, t in speaker.persona if t & triples]
            unrelated = [s for s, t in speaker.persona if t and not {rel for _, rel, _ in t} & relations]
            if entailed:
                add(rng.choice(entailed), utterance, 2)
            if unrelated:
                add(rng.choice(unrelated), utterance, 1)
            clashes = sorted({sentence for subj, rel, obj in triples if rel in EXCLUSIVE_RELATIONS
                              for other, sentence in by_slot.get((subj, rel), ()) if other != obj
                              and not _shares_object(sentence, triples, speaker)})
            for sentence in rng.sample(clashes, min(len(clashes), contradictions_per_utterance)):
                add(sentence, utterance, 0)
    return out


def _shares_object(sentence: str, triples: frozenset[Triple], speaker: Speaker) -> bool:
    """True when the sentence is one of the speaker's own persona sentences that agrees with the utterance."""
    return any(s == sentence and t & triples for s, t in speaker.persona)


def write_pairs(examples: Sequence[NliExample], handle: TextIO) -> None:
    """Write ``utterance</s>persona sentence</s>positive|neutral|negative`` lines (the RCDG format)."""
    names = {0: "negative", 1: "neutral", 2: "positive"}
    handle.writelines(f"{e.hypothesis}</s>{e.premise}</s>{names[e.label]}\n" for e in examples)
