"""Train and evaluate pdg-eval's Con.Score / Coh-Con.Score classifier (``pdg-eval scorers train cohcon``); the
model, CLV's 3-way (persona, context, response) classifier, is :mod:`pdg_eval.models.triple_classifier`.

Training samples (``Toyhom/CLV@8399b56:Consis_Model.py:48-71``), built here from ConvAI2 *self* turns
(persona, partner utterance ``src_t``, response ``tgt_t``) in dialogue order:

- label 0 = (P, src_t, tgt_t): the gold response — coherent and consistent;
- label 1 = (P, src_t, src_{t+1}): the other speaker's next reply — neither;
- label 2 = (P, src_t, tgt_{t+1}): the same persona's later reply — consistent, not coherent.

(CLV's alternating-speaker samples give the same three triples.) CLV splits samples 90/10 at random; here the
held-out dialogues are a separate set (ConvAI2 valid by default), and every training triple sharing a persona, context
or response with them is left out. Scoring: :func:`pdg_eval.metrics.
consistency.triple_scores` with the ``released`` or ``training`` label mapping.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..inputs import iter_lines
from ..models.triple_classifier import ARCHITECTURE, LABELS, TripleExample
from ..files import file_sha256
from ..tokenize import casefold_spaces, convai2_style
from .training import (LoraSettings, confusion_report, fine_tune, prepare_checkpoint, seed_everything, with_lora,
                       write_manifest)

KIND = "pdg-eval triple classifier (CLV Con/Coh-Con)"
#: the first held-out triples, evaluated again by the test suite against the manifest
CHECK_SLICE = 300


SelfTurn = tuple[tuple[str, ...], str, str]  # (persona sentences, partner's last utterance, response)


@dataclass
class CohConRecipe:
    backbone: str
    train: tuple[str, ...]   # 'PER,SRC,TGT' line-aligned files, a triple-annotated both-persona dialogue file or a
                             # Synthetic-Persona-Chat CSV
    valid: str               # 'PER,SRC,TGT' of the held-out dialogues (never trained on)
    epochs: int = 2
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-3
    warmup_ratio: float = 0.1
    max_length: int = 64     # tokens per sentence (clv-cross-v1: per context or response, 4x in all)
    head_hidden: int = 128
    architecture: str = ARCHITECTURE
    seed: int = 13
    lora: LoraSettings = field(default_factory=LoraSettings)


def read_self_turns(persona_file: str | Path, source_file: str | Path,
                    target_file: str | Path) -> list[list[SelfTurn]]:
    """Line-aligned ``per``/``src``/``tgt`` files (RCDG format) grouped into dialogues (runs of one persona)."""
    files = [list(iter_lines(p)) for p in (persona_file, source_file, target_file)]
    if len({len(f) for f in files}) != 1:
        raise InputError(str(target_file), None, None,
                         f"persona/source/target files differ in length ({', '.join(str(len(f)) for f in files)} lines)")
    dialogues: list[list[SelfTurn]] = []
    last = None
    for (number, per), (_, src), (_, tgt) in zip(*files):
        if not per.strip():
            raise InputError(str(persona_file), number, "persona", "empty")
        if per != last:
            dialogues.append([])
            last = per
        persona = tuple(s.strip() for s in per.split("</s>") if s.strip())
        dialogues[-1].append((persona, src.strip(), tgt.strip()))
    return dialogues


def both_speakers_self_turns(path: str | Path) -> list[list[SelfTurn]]:
    """Self turns of both speakers of every dialogue of a triple-annotated both-persona file
    (``jasonwu0731/GettingToKnowYou@85108fb:data/ConvAI2/*_both_original_final.txt``): the speaker of ``your
    persona`` answers each partner line; the partner, who opens, answers each earlier line of the other speaker."""
    from .dnli_rebuild import read_triple_dialogues

    out = []
    for partner, me in read_triple_dialogues(path):
        mine, theirs = [u for u, _ in me.utterances], [u for u, _ in partner.utterances]
        persona_me, persona_partner = tuple(s for s, _ in me.persona), tuple(s for s, _ in partner.persona)
        out.append([(persona_me, theirs[t], mine[t]) for t in range(min(len(mine), len(theirs)))])
        out.append([(persona_partner, mine[t - 1], theirs[t]) for t in range(1, min(len(theirs), len(mine) + 1))])
    return [d for d in out if d]


def synthetic_self_turns(path: str | Path) -> list[list[SelfTurn]]:
    """Self turns of both users of every Synthetic-Persona-Chat conversation (:mod:`pdg_eval.readers.
    synthetic_persona_chat`), in ConvAI2's text form (:func:`pdg_eval.tokenize.convai2_style`); consecutive lines of
    one user are one utterance, so each user answers the other's previous utterance."""
    from ..readers.synthetic_persona_chat import COLUMNS, csv_rows, synthetic_turns

    out = []
    for _, cells in csv_rows(path):  # a file without the columns is refused there
        personas = {user: tuple(convai2_style(s) for s in cells[f"user {user} personas"].splitlines() if s.strip())
                    for user in (1, 2)}
        utterances: list[tuple[int, str]] = []
        for user, text in synthetic_turns(cells[COLUMNS[2]]):
            if utterances and utterances[-1][0] == user:
                utterances[-1] = (user, f"{utterances[-1][1]} {convai2_style(text)}")
            else:
                utterances.append((user, convai2_style(text)))
        for user in (1, 2):
            turns = [(personas[user], utterances[k - 1][1], text)
                     for k, (who, text) in enumerate(utterances) if k and who == user]
            if turns and personas[user]:
                out.append(turns)
    return out


def read_dialogue_source(source: str) -> list[list[SelfTurn]]:
    """``PER,SRC,TGT`` files, one triple-annotated both-persona dialogue file or one Synthetic-Persona-Chat CSV."""
    from ..errors import ConfigError

    files = source.split(",")
    if len(files) == 3:
        return read_self_turns(*files)
    if len(files) == 1 and files[0].lower().endswith(".csv"):
        return synthetic_self_turns(files[0])
    if len(files) == 1:
        return both_speakers_self_turns(files[0])
    raise ConfigError(f"expected PER,SRC,TGT or one dialogue file, got {source!r}")


def clv_examples(dialogue: Sequence[SelfTurn]) -> list[TripleExample]:
    """CLV's three labels for every turn of one dialogue (see the module docstring)."""
    out = []
    for t, (persona, src, tgt) in enumerate(dialogue):
        out.append(TripleExample(persona, src, tgt, 0))
        if t + 1 < len(dialogue):
            out.append(TripleExample(persona, src, dialogue[t + 1][1], 1))
            out.append(TripleExample(persona, src, dialogue[t + 1][2], 2))
    return out


def without_held_out(examples: Sequence[TripleExample],
                     held_out: Sequence[Sequence[SelfTurn]]) -> list[TripleExample]:
    """Training triples that share no persona, context or response with the held-out dialogues (normalised text)."""
    personas = {tuple(casefold_spaces(s) for s in turn[0]) for d in held_out for turn in d}
    sentences = {casefold_spaces(text) for d in held_out for _, src, tgt in d for text in (src, tgt)}
    return [e for e in examples if tuple(casefold_spaces(s) for s in e.persona) not in personas
            and casefold_spaces(e.context) not in sentences and casefold_spaces(e.response) not in sentences]


def evaluate(model_dir: str | Path, examples: Sequence[TripleExample], batch_size: int = 64) -> dict:
    """Accuracy, per-class recall and confusion matrix (rows = gold, columns = predicted, label order
    :data:`LABELS`), the inputs cut to the length the classifier was trained on."""
    from ..models.runtime import ModelFolder, argmax
    from ..models.triple_classifier import TripleClassifier

    max_length = ModelFolder(str(model_dir)).trained_max_length or CohConRecipe.max_length
    probs = TripleClassifier(str(model_dir), max_length=max_length, batch_size=batch_size).predict_proba(examples)
    return confusion_report([e.label for e in examples], [argmax(p) for p in probs], LABELS)


def training_triples(recipe: CohConRecipe) -> tuple[list[list[SelfTurn]], list[list[list[SelfTurn]]],
                                                    list[list[TripleExample]]]:
    """(held-out dialogues, the dialogues of each training source, the training triples kept from each source)."""
    held_out = read_dialogue_source(recipe.valid)
    sources = [read_dialogue_source(source) for source in recipe.train]
    return held_out, sources, [without_held_out([e for d in dialogues for e in clv_examples(d)], held_out)
                               for dialogues in sources]


def train_cohcon(recipe: CohConRecipe, out_dir: str | Path, progress: bool = True, resume: bool = False,
                 command: str | None = None, device: str = "auto") -> dict:
    """Fine-tune the encoder's LoRA adapter and the head on CLV triples of the training dialogues
    (without anything of the held-out ones), evaluate on the held-out dialogues, save adapter + manifest."""
    import torch

    from ..models.runtime import resolve_model_dir, select_device
    from ..models.triple_classifier import new_triple_model, save_triple_model, to_device

    seed_everything(recipe.seed)
    device = select_device(device)
    held_out, sources, per_source = training_triples(recipe)
    train = [e for examples in per_source for e in examples]
    backbone = resolve_model_dir(recipe.backbone)
    tokenizer, model = new_triple_model(backbone, recipe.head_hidden, recipe.architecture)
    model.encoder = with_lora(model.encoder, recipe.lora, head=None)

    def batch_loss(batch: list[TripleExample], device):
        encoded = to_device(model.encode(tokenizer, batch, recipe.max_length), device)
        return model(**encoded, labels=torch.tensor([e.label for e in batch], device=device)).loss

    out = Path(out_dir)
    checkpoint = prepare_checkpoint(out, resume)
    train_seconds = fine_tune(model, train, batch_loss, epochs=recipe.epochs, batch_size=recipe.batch_size,
                              lr=recipe.lr, weight_decay=recipe.weight_decay, warmup_ratio=recipe.warmup_ratio,
                              seed=recipe.seed, desc="train cohcon", progress=progress, checkpoint=checkpoint,
                              group_of=lambda e: e.persona, device=device)
    save_triple_model(model, out, backbone)
    checkpoint.unlink()  # before anything hashes the folder's weight files
    valid = [e for d in held_out for e in clv_examples(d)]
    manifest = write_manifest(out, {
        "scorer": KIND, "architecture": recipe.architecture, "command": command, "recipe": asdict(recipe),
        "labels": list(LABELS),
        "data": {"train": [{"source": source, "sha256": [file_sha256(p) for p in source.split(",")],
                            "dialogues": len(dialogues), "examples": len(examples)}
                           for source, dialogues, examples in zip(recipe.train, sources, per_source)],
                 "valid": {"source": recipe.valid, "sha256": [file_sha256(p) for p in recipe.valid.split(",")],
                           "dialogues": len(held_out), "examples": len(valid)}},
    }, backbone, {"convai2_valid_clv": evaluate(out, valid),
                  f"convai2_valid_clv[:{CHECK_SLICE}]": evaluate(out, valid[:CHECK_SLICE])}, train_seconds, device)
    return manifest
