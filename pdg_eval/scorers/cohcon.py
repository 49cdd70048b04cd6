"""Train and evaluate pdg-eval's Con.Score / Coh-Con.Score classifier (``pdg-eval scorers train cohcon``); the
model, CLV's 3-way (persona, context, response) classifier, is :mod:`pdg_eval.models.triple_classifier`.

Training samples (``Toyhom/CLV@8399b56:Consis_Model.py:48-71``), built here from ConvAI2 *self* turns
(persona, partner utterance ``src_t``, response ``tgt_t``) in dialogue order:

- label 0 = (P, src_t, tgt_t): the gold response — coherent and consistent;
- label 1 = (P, src_t, src_{t+1}): the other speaker's next reply — neither;
- label 2 = (P, src_t, tgt_{t+1}): the same persona's later reply — consistent, not coherent.

(CLV's alternating-speaker samples give the same three triples.) CLV splits samples 90/10 at random; here the
split is by dialogue with a fixed seed, so no dialogue is on both sides. Scoring: :func:`pdg_eval.metrics.
consistency.triple_scores` with the ``released`` or ``training`` label mapping.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..inputs import iter_lines
from ..models.triple_classifier import LABELS, TripleExample
from ..tokenize import file_sha256
from .training import confusion_report, fine_tune, seed_everything, write_manifest

KIND = "pdg-eval triple classifier (CLV Con/Coh-Con)"


@dataclass
class CohConRecipe:
    backbone: str
    persona_file: str
    source_file: str
    target_file: str
    epochs: int = 2
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 1e-3
    warmup_ratio: float = 0.1
    max_length: int = 256
    valid_fraction: float = 0.1
    seed: int = 13


def read_self_turns(persona_file: str | Path, source_file: str | Path,
                    target_file: str | Path) -> list[list[tuple[tuple[str, ...], str, str]]]:
    """Line-aligned ``per``/``src``/``tgt`` files (RCDG format) grouped into dialogues (runs of one persona)."""
    files = [list(iter_lines(p)) for p in (persona_file, source_file, target_file)]
    if len({len(f) for f in files}) != 1:
        raise InputError(str(target_file), None, None,
                         f"persona/source/target files differ in length ({', '.join(str(len(f)) for f in files)} lines)")
    dialogues: list[list[tuple[tuple[str, ...], str, str]]] = []
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


def clv_examples(dialogue: Sequence[tuple[tuple[str, ...], str, str]]) -> list[TripleExample]:
    """CLV's three labels for every turn of one dialogue (see the module docstring)."""
    out = []
    for t, (persona, src, tgt) in enumerate(dialogue):
        out.append(TripleExample(persona, src, tgt, 0))
        if t + 1 < len(dialogue):
            out.append(TripleExample(persona, src, dialogue[t + 1][1], 1))
            out.append(TripleExample(persona, src, dialogue[t + 1][2], 2))
    return out


def split_dialogues(dialogues: list, valid_fraction: float, seed: int) -> tuple[list, list]:
    order = list(range(len(dialogues)))
    random.Random(seed).shuffle(order)
    n_valid = max(1, round(valid_fraction * len(dialogues))) if len(dialogues) > 1 else 0
    valid = set(order[:n_valid])
    return ([d for i, d in enumerate(dialogues) if i not in valid], [d for i, d in enumerate(dialogues) if i in valid])


def evaluate(model_dir: str | Path, examples: Sequence[TripleExample], batch_size: int = 64) -> dict:
    """Accuracy and confusion matrix (rows = gold, columns = predicted, label order :data:`LABELS`)."""
    from ..models.runtime import argmax
    from ..models.triple_classifier import TripleClassifier

    probs = TripleClassifier(str(model_dir), batch_size=batch_size).predict_proba(examples)
    return confusion_report([e.label for e in examples], [argmax(p) for p in probs], LABELS)


def train_cohcon(recipe: CohConRecipe, out_dir: str | Path, progress: bool = True) -> dict:
    """Fine-tune on CLV triples of the training dialogues, evaluate on the held-out ones, save model + manifest."""
    import torch

    from ..models.runtime import resolve_model_dir
    from ..models.triple_classifier import encode_triples, new_segmented_classifier, save_segmented_classifier

    seed_everything(recipe.seed)
    dialogues = read_self_turns(recipe.persona_file, recipe.source_file, recipe.target_file)
    train_dialogues, valid_dialogues = split_dialogues(dialogues, recipe.valid_fraction, recipe.seed)
    train = [e for d in train_dialogues for e in clv_examples(d)]
    valid = [e for d in valid_dialogues for e in clv_examples(d)]
    backbone = resolve_model_dir(recipe.backbone)
    tokenizer, model = new_segmented_classifier(backbone)

    def batch_loss(batch: list[TripleExample]):
        return model(**encode_triples(tokenizer, batch, recipe.max_length),
                     labels=torch.tensor([e.label for e in batch])).loss

    started = time.time()
    fine_tune(model, train, batch_loss, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
              weight_decay=recipe.weight_decay, warmup_ratio=recipe.warmup_ratio, seed=recipe.seed,
              desc="train cohcon", progress=progress)
    save_segmented_classifier(tokenizer, model, out_dir)
    result = evaluate(out_dir, valid)
    return write_manifest(out_dir, {
        "scorer": KIND, "recipe": asdict(recipe), "labels": list(LABELS),
        "data": {name: {"path": path, "sha256": file_sha256(path)} for name, path in
                 (("persona", recipe.persona_file), ("source", recipe.source_file), ("target", recipe.target_file))},
        "split": {"dialogues_train": len(train_dialogues), "dialogues_valid": len(valid_dialogues),
                  "examples_train": len(train), "examples_valid": len(valid)},
    }, backbone, result, started)
