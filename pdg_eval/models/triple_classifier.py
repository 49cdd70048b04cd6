"""pdg-eval's Con.Score / Coh-Con.Score classifier: CLV's 3-way (persona, context, response) classifier
(Toyhom/CLV@a4c7bfe), trained by ``pdg-eval scorers train cohcon`` (:mod:`pdg_eval.scorers.cohcon`).

Model (``Toyhom/CLV@a4c7bfe:Consis_Model.py:120-148``): the string
``[CLS] {persona} [PERSONA] {context} [CONTEXT] {response} [RESPONSE]`` (no other special tokens,
``max_length=256``), segment ids 0/1/2 through an extra ``nn.Embedding(3, hidden)`` added to the word
embeddings, a sequence-classification head with 3 classes. The offline default backbone is all-MiniLM-L6-v2
(CLV used xlm-roberta-base, MORPHEUS' code bert-base-uncased; any hub id works online). The segment
embedding is initialised with the backbone's ``initializer_range`` (CLV leaves PyTorch's N(0, 1)).

Labels (``Toyhom/CLV@8399b56:Consis_Model.py:48-71``): 0 = coherent and consistent, 1 = neither (the other
speaker's reply), 2 = consistent, not coherent (the same persona's later reply).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from .runtime import ModelFolder, PairClassifier

MARKERS = ("[PERSONA]", "[CONTEXT]", "[RESPONSE]")
LABELS = ("coherent_consistent", "other_speaker", "same_persona_other_turn")
SEGMENTS_FILE = "segment_embeddings.safetensors"


@dataclass(frozen=True)
class TripleExample:
    persona: tuple[str, ...]
    context: str
    response: str
    label: int = 0


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


def new_segmented_classifier(backbone: str | Path):
    """(tokenizer with the markers, SegmentedClassifier with a fresh 3-way head and segment embedding) from a
    backbone folder; draws from torch's RNG in a fixed order (head, then segment embedding)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    tokenizer.add_special_tokens({"additional_special_tokens": list(MARKERS)})
    classifier = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    classifier.resize_token_embeddings(len(tokenizer))
    segments = torch.nn.Embedding(3, classifier.config.hidden_size)
    torch.nn.init.normal_(segments.weight, std=getattr(classifier.config, "initializer_range", 0.02))
    return tokenizer, _segmented_classifier_class()(classifier, segments)


def save_segmented_classifier(tokenizer, model, out_dir: str | Path) -> None:
    """Write the folder :func:`load_segmented_classifier` reads: classifier, tokenizer and segment embedding."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.classifier.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_file({"weight": model.segments.weight.detach().contiguous()}, str(out / SEGMENTS_FILE))


def check_triple_classifier(model_dir: str | Path) -> None:
    """Refuse a folder that is not a triple classifier (no segment embedding), without loading anything."""
    if not (Path(model_dir) / SEGMENTS_FILE).is_file():
        raise InputError(str(model_dir), None, None, f"not a pdg-eval triple classifier (no {SEGMENTS_FILE}); "
                                                     "build one with `pdg-eval scorers train cohcon --out DIR`")


def load_segmented_classifier(model_dir: str | Path):
    """(tokenizer, SegmentedClassifier) from a folder written by :func:`save_segmented_classifier`."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = Path(model_dir)
    check_triple_classifier(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    classifier = AutoModelForSequenceClassification.from_pretrained(model_dir)
    weight = load_file(str(model_dir / SEGMENTS_FILE))["weight"]
    segments = torch.nn.Embedding(*weight.shape)
    segments.weight.data.copy_(weight)
    return tokenizer, _segmented_classifier_class()(classifier, segments)


class TripleClassifier(PairClassifier):
    """CLV's (persona, context, response) classifier as built by ``pdg-eval scorers train cohcon``."""

    def __init__(self, name_or_path: str, device: str = "auto", max_length: int = 256, batch_size: int = 64):
        super().__init__(name_or_path, device, max_length, batch_size)

    def _load(self):
        return load_segmented_classifier(self.model_dir)

    def _length(self, item) -> int:
        return sum(map(len, item.persona)) + len(item.context) + len(item.response)

    def _logits(self, items: Sequence):
        enc = encode_triples(self.tokenizer, items, self.max_length)
        return self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits


def triple_classifier_folder(name_or_path: str) -> ModelFolder:
    """The folder of a triple classifier, checked without loading the model."""
    folder = ModelFolder(name_or_path)
    check_triple_classifier(folder.path)
    return folder


@lru_cache(maxsize=4)
def load_triple_classifier(name_or_path: str, device: str = "auto", max_length: int = 256,
                           batch_size: int = 64) -> TripleClassifier:
    return TripleClassifier(name_or_path, device, max_length, batch_size)
