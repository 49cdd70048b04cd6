"""pdg-eval's Con.Score / Coh-Con.Score classifier: CLV's 3-way (persona, context, response) classifier
(spec: metrics.md §6.2), trained by ``pdg-eval scorers train cohcon``.

Model (``Toyhom/CLV@a4c7bfe:Consis_Model.py:120-148``): the string
``[CLS] {persona} [PERSONA] {context} [CONTEXT] {response} [RESPONSE]`` (no other special tokens,
``max_length=256``), segment ids 0/1/2 through an extra ``nn.Embedding(3, hidden)`` added to the word
embeddings, a sequence-classification head with 3 classes. The offline default backbone is all-MiniLM-L6-v2
(CLV used xlm-roberta-base, MORPHEUS' code bert-base-uncased; any hub id works online). The segment
embedding is initialised with the backbone's ``initializer_range`` (CLV leaves PyTorch's N(0, 1)).

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

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..inputs import iter_lines
from ..tokenize import file_sha256
from .training import confusion_report, fine_tune, seed_everything

MARKERS = ("[PERSONA]", "[CONTEXT]", "[RESPONSE]")
LABELS = ("coherent_consistent", "other_speaker", "same_persona_other_turn")
SEGMENTS_FILE = "segment_embeddings.safetensors"
KIND = "pdg-eval triple classifier (CLV Con/Coh-Con)"


@dataclass(frozen=True)
class TripleExample:
    persona: tuple[str, ...]
    context: str
    response: str
    label: int = 0


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


def persona_text(persona: Sequence[str]) -> str:
    """Persona sentences as one string, each ending in ' .' (the RCDG files drop the final period, ConvAI2 keeps it)."""
    return " ".join(s.strip().rstrip(".").rstrip() + " ." for s in persona if s.strip())


def encode_triples(tokenizer, examples: Sequence[TripleExample], max_length: int) -> dict:
    """Input ids, attention mask and segment ids (0 persona, 1 context, 2 response), right-padded tensors."""
    import torch

    texts = [text for e in examples for text in (persona_text(e.persona), e.context, e.response)]
    pieces = tokenizer(texts, add_special_tokens=False)["input_ids"]  # one batched call for all segments
    markers = tokenizer.convert_tokens_to_ids(list(MARKERS))
    rows = []
    for k in range(len(examples)):
        ids, segments = [tokenizer.cls_token_id], [0]
        for segment, marker in enumerate(markers):
            piece = pieces[3 * k + segment] + [marker]
            ids += piece
            segments += [segment] * len(piece)
        rows.append((ids[:max_length], segments[:max_length]))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    return {"input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows]),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]),
            "segment_ids": torch.tensor([seg + [0] * (width - len(seg)) for _, seg in rows])}


def _segmented_classifier_class():
    import torch

    class SegmentedClassifier(torch.nn.Module):
        """A sequence classifier whose word embeddings get a learned segment embedding added (CLV)."""

        def __init__(self, classifier, segments: torch.nn.Embedding):
            super().__init__()
            self.classifier, self.segments = classifier, segments

        def forward(self, input_ids, attention_mask, segment_ids, labels=None):
            embeds = self.classifier.get_input_embeddings()(input_ids) + self.segments(segment_ids)
            return self.classifier(inputs_embeds=embeds, attention_mask=attention_mask,
                                   token_type_ids=torch.zeros_like(input_ids), labels=labels)

    return SegmentedClassifier


def load_segmented_classifier(model_dir: str | Path):
    """(tokenizer, SegmentedClassifier) from a folder written by :func:`train_cohcon`."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / SEGMENTS_FILE).is_file():
        raise InputError(str(model_dir), None, None, f"not a pdg-eval triple classifier (no {SEGMENTS_FILE}); "
                                                     "build one with `pdg-eval scorers train cohcon --out DIR`")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    classifier = AutoModelForSequenceClassification.from_pretrained(model_dir)
    weight = load_file(str(model_dir / SEGMENTS_FILE))["weight"]
    segments = torch.nn.Embedding(*weight.shape)
    segments.weight.data.copy_(weight)
    return tokenizer, _segmented_classifier_class()(classifier, segments)


def evaluate(model_dir: str | Path, examples: Sequence[TripleExample], batch_size: int = 64) -> dict:
    """Accuracy and confusion matrix (rows = gold, columns = predicted, label order :data:`LABELS`)."""
    from ..models.runtime import TripleClassifier, argmax

    probs = TripleClassifier(str(model_dir), batch_size=batch_size).predict_proba(examples)
    return confusion_report([e.label for e in examples], [argmax(p) for p in probs], LABELS)


def train_cohcon(recipe: CohConRecipe, out_dir: str | Path, progress: bool = True) -> dict:
    """Fine-tune on CLV triples of the training dialogues, evaluate on the held-out ones, save model + manifest."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..models.runtime import resolve_model_dir, weights_sha256

    seed_everything(recipe.seed)
    dialogues = read_self_turns(recipe.persona_file, recipe.source_file, recipe.target_file)
    train_dialogues, valid_dialogues = split_dialogues(dialogues, recipe.valid_fraction, recipe.seed)
    train = [e for d in train_dialogues for e in clv_examples(d)]
    valid = [e for d in valid_dialogues for e in clv_examples(d)]
    backbone = resolve_model_dir(recipe.backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    tokenizer.add_special_tokens({"additional_special_tokens": list(MARKERS)})
    classifier = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    classifier.resize_token_embeddings(len(tokenizer))
    segments = torch.nn.Embedding(3, classifier.config.hidden_size)
    torch.nn.init.normal_(segments.weight, std=getattr(classifier.config, "initializer_range", 0.02))
    model = _segmented_classifier_class()(classifier, segments)

    def batch_loss(batch: list[TripleExample]):
        return model(**encode_triples(tokenizer, batch, recipe.max_length),
                     labels=torch.tensor([e.label for e in batch])).loss

    started = time.time()
    fine_tune(model, train, batch_loss, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
              weight_decay=recipe.weight_decay, warmup_ratio=recipe.warmup_ratio, seed=recipe.seed,
              desc="train cohcon", progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classifier.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_file({"weight": segments.weight.detach().contiguous()}, str(out / SEGMENTS_FILE))
    result = evaluate(out, valid)
    manifest = {
        "scorer": KIND, "recipe": asdict(recipe), "labels": list(LABELS),
        "data": {name: {"path": path, "sha256": file_sha256(path)} for name, path in
                 (("persona", recipe.persona_file), ("source", recipe.source_file), ("target", recipe.target_file))},
        "split": {"dialogues_train": len(train_dialogues), "dialogues_valid": len(valid_dialogues),
                  "examples_train": len(train), "examples_valid": len(valid)},
        "backbone_sha256": weights_sha256(str(backbone)), "heldout": result,
        "weights_sha256": weights_sha256(str(out)), "train_seconds": round(time.time() - started, 1),
        "torch": torch.__version__,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
