"""IDL's persona extractor data (§3.2.1, A.2): PersonaExt sentences with one ⟨subject, relation, object⟩ triple each,
stacked into multi-sentence samples; the parse of the extractor's output and its sample accuracy.

A sample's input is its sentences joined by ``\\n``; its target one ``<subject, relation, object>`` per sentence, in
order, joined by ``\\n``. The output is parsed with ``<(.*?),(.*?),(.*?)>``; a sample is right only when every triple
matches (after trimming and casefolding). PersonaExt's sentences (read by :mod:`pdg_eval.readers.personaext`) are
deduplicated across its split files and split 90/10 by sentence before stacking, so no sentence is in both parts.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from pdg_eval.readers.personaext import Sentence, Triple, read_personaext

__all__ = ["Sentence", "Triple", "read_personaext", "split_sentences", "stack", "parse_triples", "sample_correct"]

TRIPLE = re.compile(r"<(.*?),(.*?),(.*?)>")
#: the instruction the extractor is trained and run with (pdg-eval's wording; IDL's prompt was not released)
INSTRUCTION = ("Extract the persona facts of the sentences below: for each sentence, in order, one line "
               "<subject, relation, object>.\n{sentences}")
#: new tokens allowed per input sentence when extracting (a triple line is about 10–20 tokens)
TOKENS_PER_SENTENCE = 24
STACK_SIZES = (4, 8)  # sentences per stacked sample, inclusive


def split_sentences(sentences: Sequence[Sentence], valid_fraction: float = 0.1, seed: int = 13
                    ) -> tuple[list[Sentence], list[Sentence]]:
    """(train, valid): a seeded shuffle of the sentences, the last ``valid_fraction`` held out."""
    order = list(sentences)
    random.Random(seed).shuffle(order)
    cut = len(order) - round(len(order) * valid_fraction)
    return order[:cut], order[cut:]


@dataclass(frozen=True)
class Sample:
    sentences: tuple[Sentence, ...]

    @property
    def source(self) -> str:
        return "\n".join(s.text for s in self.sentences)

    @property
    def target(self) -> str:
        return "\n".join(s.triple.text() for s in self.sentences)


def stack(sentences: Sequence[Sentence], sizes: tuple[int, int] = STACK_SIZES, seed: int = 13) -> list[Sample]:
    """Consecutive runs of ``sizes[0]``–``sizes[1]`` sentences (a seeded size per sample; the last run may be
    shorter), every sentence in exactly one sample."""
    rng = random.Random(seed)
    out, start = [], 0
    while start < len(sentences):
        size = rng.randint(*sizes)
        out.append(Sample(tuple(sentences[start:start + size])))
        start += size
    return out


def parse_triples(text: str) -> list[Triple]:
    return [Triple(*(part.strip() for part in match)) for match in TRIPLE.findall(text)]


def sample_correct(output: str, sample: Sample) -> bool:
    """Every triple of the sample, in order and nothing more (IDL A.2: a sample is wrong if any element differs)."""
    return accuracy([parse_triples(output)], [sample]) == 1.0


def persona_objects(triples: Iterable[Triple]) -> set[str]:
    return {" ".join(t.object.split()).casefold() for t in triples if t.object.strip()}


def persona_intensive(utterances: Sequence[str], objects: set[str]) -> list[str]:
    """The utterances that contain an extracted object (word-bounded, casefolded) — IDL's persona-intensive ones."""
    patterns = [re.compile(rf"(?<!\w){re.escape(o)}(?!\w)") for o in sorted(objects)]
    return [u for u in utterances if any(p.search(u.casefold()) for p in patterns)]


# -- the extractor as a causal LM instruction task ---------------------------------------------------------------------

def prompt_text(sentences: Sequence[str]) -> str:
    return INSTRUCTION.format(sentences="\n".join(" ".join(s.split()) for s in sentences))


def training_feature(formatter, sample: Sample, max_length: int) -> dict:
    """The instruction with the sample's sentences, then its triples (loss on the triples only)."""
    return formatter.instruction_turn(prompt_text([s.text for s in sample.sentences]), "", sample.target, max_length)


def extract(model, tokenizer, formatter, inputs: Sequence[Sequence[str]], decoding, progress: bool = False
            ) -> list[list[Triple]]:
    """The triples a trained extractor writes for each list of sentences (greedy unless ``decoding`` says
    otherwise; ``decoding.max_new_tokens`` is raised to :data:`TOKENS_PER_SENTENCE` per sentence)."""
    import dataclasses

    from pdg_eval_methods.common.generation import generate_causal_lm

    if not inputs:
        return []
    longest = max(len(sentences) for sentences in inputs)
    decoding = dataclasses.replace(decoding, max_new_tokens=max(decoding.max_new_tokens,
                                                                TOKENS_PER_SENTENCE * longest))
    prompts = [formatter.ids(formatter.instruction(prompt_text(sentences)))[-decoding.max_prompt_tokens:]
               for sentences in inputs]
    texts, _ = generate_causal_lm(model, tokenizer, prompts, decoding, progress, desc="extract", one_line=False)
    return [parse_triples(text) for text in texts]


def accuracy(predicted: Sequence[Sequence[Triple]], samples: Sequence[Sample]) -> float:
    """Share of samples whose every triple is right (IDL A.2)."""
    if len(predicted) != len(samples) or not samples:
        raise ValueError("one prediction per sample, at least one")
    right = sum([t.key() for t in triples] == [s.triple.key() for s in sample.sentences]
                for triples, sample in zip(predicted, samples))
    return right / len(samples)


# -- the objects of any text, as the stages need them ------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences_of(text: str) -> list[str]:
    """A text's sentences (split after ``.``, ``!`` or ``?``), the extractor's input lines."""
    return [s for s in _SENTENCE_END.split(" ".join(text.split())) if s] or [text]


class PersonaObjects:
    """The persona objects a trained extractor finds in each text (its :func:`sentences_of` as one input), memoised;
    with ``path`` also kept on disk (JSON lines, first line the ``stamp`` naming the extractor), so that a resumed
    stage does not extract again. ``find`` maps lists of sentences to their parsed triples (:func:`extract`)."""

    def __init__(self, find: Callable[[list[list[str]]], list[list[Triple]]], path: Path | None = None,
                 stamp: dict | None = None):
        self.find, self.path, self.stamp = find, path, stamp
        self.found: dict[str, set[str]] = {}
        if path is not None and path.is_file():
            lines = path.read_text("utf-8").splitlines()
            if lines and json.loads(lines[0]).get("stamp") == stamp:
                for line in lines[1:]:
                    row = json.loads(line)
                    self.found[row["text"]] = set(row["objects"])

    def ensure(self, texts: Iterable[str]) -> None:
        """Extract (in batches) the objects of the texts not seen yet."""
        missing = [t for t in dict.fromkeys(texts) if t not in self.found]
        if not missing:
            return
        for text, triples in zip(missing, self.find([sentences_of(t) for t in missing])):
            self.found[text] = persona_objects(triples)
        if self.path is not None:
            from pdg_eval.files import atomic_writer

            with atomic_writer(self.path, parents=True) as handle:
                handle.write(json.dumps({"stamp": self.stamp}, ensure_ascii=False) + "\n")
                for text, objects in self.found.items():
                    handle.write(json.dumps({"text": text, "objects": sorted(objects)}, ensure_ascii=False) + "\n")

    def __call__(self, text: str) -> set[str]:
        self.ensure([text])
        return self.found[text]
