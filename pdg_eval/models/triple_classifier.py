"""pdg-eval's Con.Score / Coh-Con.Score classifier: a 3-way classifier over (persona, context, response) with CLV's
labels (Toyhom/CLV@8399b56:Consis_Model.py:48-71): 0 = coherent and consistent (the gold reply), 1 = neither (the
other speaker's reply), 2 = consistent, not coherent (the same persona's later reply). Trained by ``pdg-eval scorers
train cohcon`` (:mod:`pdg_eval.scorers.cohcon`).

Architecture (pdg-eval's; CLV's classifier was never released): a Siamese sentence encoder. The context, the
response and every persona sentence are encoded separately by one LoRA-adapted sentence encoder (mean pooling,
unit length; all-MiniLM-L6-v2 offline), and a small head reads the interaction features of InferSent (Conneau et al.
2017) — ``c, r, c*r, |c-r|`` for context and response, ``p*r, |p-r|`` for the persona sentences pooled by their
similarity to the response — plus three cosines (context-response, best and mean persona-response). CLV feeds one
concatenation ``[CLS] persona [PERSONA] context [CONTEXT] response [RESPONSE]`` to a cross-encoder
(``Toyhom/CLV@a4c7bfe:Consis_Model.py:120-148``); on the MiniLM backbone that model never learned class 2, while
the sentence encoder's pretraining on conversational pairs carries the coherence signal the labels need.
``siamese-cross-v2`` adds one cross-encoding of the pair ``context [SEP] response`` by the same encoder (mean
pooling, unit length) to the head's input: the next-utterance signal of a cross-encoder (Humeau et al. 2020), where
class 2 differs from class 0.

``clv-cross-v1`` is CLV's own model for backbones of its size (a base-size encoder, on a GPU): one sequence
``[CLS] persona [SEP] context [SEP] response [SEP]`` whose tokens get a learned segment embedding (0 persona,
1 context, 2 response) added to their word embeddings (``Toyhom/CLV@a4c7bfe:Consis_Model.py:120-148``), mean
pooling and the head. CLV marks the parts with added tokens ``[PERSONA] [CONTEXT] [RESPONSE]``; new token
embeddings are not part of a LoRA adapter, so the tokenizer's separator stands there and the segment embedding
(zero at the start: the backbone's own embeddings) carries the part. Context and response are cut to
``max_length`` tokens each, the persona (its sentences joined by spaces) to what is left of ``4 * max_length``
(CLV's 256 for the default 64).

A classifier folder holds the encoder's LoRA adapter (peft), ``triple_head.safetensors`` and ``manifest.json``
(backbone id and sha256, recipe, held-out report); :func:`load_triple_model` merges the adapter into the backbone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from .runtime import ModelFolder, PairClassifier

LABELS = ("coherent_consistent", "other_speaker", "same_persona_other_turn")
HEAD_FILE = "triple_head.safetensors"
#: the architectures (see the module docstring); the first is the default
ARCHITECTURES = ("siamese-meanpool-v1", "siamese-cross-v2", "clv-cross-v1")
ARCHITECTURE = ARCHITECTURES[0]
#: segment ids of the parts of a clv-cross-v1 sequence
PERSONA_SEGMENT, CONTEXT_SEGMENT, RESPONSE_SEGMENT = 0, 1, 2
#: similarity temperature of the persona pooling (cosines are in [-1, 1])
POOL_TEMPERATURE = 0.05


@dataclass(frozen=True)
class TripleExample:
    persona: tuple[str, ...]
    context: str
    response: str
    label: int = 0


def _mean_pool(hidden, attention_mask):
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def _head(features: int, head_hidden: int):
    import torch

    return torch.nn.Sequential(torch.nn.Linear(features, head_hidden), torch.nn.GELU(), torch.nn.Dropout(0.1),
                               torch.nn.Linear(head_hidden, len(LABELS)))


def _model_class(architecture: str = ARCHITECTURE):
    import torch

    class SiameseTripleModel(torch.nn.Module):
        """Sentence encoder (mean pooling) + interaction-feature head; ``forward`` returns the 3-way logits."""

        def __init__(self, encoder, head_hidden: int, architecture: str = ARCHITECTURE):
            super().__init__()
            width = encoder.config.hidden_size
            self.encoder = encoder
            self.architecture = architecture
            self.cross_pair = architecture == "siamese-cross-v2"
            self.head = _head((7 if self.cross_pair else 6) * width + 3, head_hidden)

        def encode(self, tokenizer, examples: Sequence[TripleExample], max_length: int) -> dict:
            """The keyword arguments of :meth:`forward` for ``examples`` (:func:`encode_triples`)."""
            return encode_triples(tokenizer, examples, max_length, cross_pair=self.cross_pair)

        def trained_state(self) -> dict:
            """What a classifier folder keeps besides the encoder's adapter: the head."""
            return self.head.state_dict()

        def load_trained_state(self, state: dict) -> None:
            self.head.load_state_dict(state)

        def embed(self, input_ids, attention_mask, token_type_ids=None):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            return torch.nn.functional.normalize(_mean_pool(hidden, attention_mask), dim=-1)

        def forward(self, chunks, position, context_index, response_index, persona_index, persona_mask,
                    pair=None, labels=None):
            vectors = torch.cat([self.embed(ids, mask) for ids, mask in chunks])[position]
            c, r, personas = vectors[context_index], vectors[response_index], vectors[persona_index]
            cosines = torch.einsum("bsd,bd->bs", personas, r).masked_fill(~persona_mask, -1.0)
            weights = torch.softmax(cosines / POOL_TEMPERATURE, dim=-1).unsqueeze(-1)
            p = (weights * personas).sum(1)
            mean_cos = (cosines * persona_mask).sum(1) / persona_mask.sum(1).clamp(min=1)
            scalars = torch.stack([(c * r).sum(-1), cosines.max(1).values, mean_cos], dim=-1)
            features = [c, r, c * r, (c - r).abs(), p * r, (p - r).abs(), scalars]
            if self.cross_pair:
                features.append(self.embed(*pair))
            logits = self.head(torch.cat(features, dim=-1))
            loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return TripleOutput(logits, loss)

    class CrossTripleModel(torch.nn.Module):
        """CLV's cross-encoder: one (persona, context, response) sequence with segment embeddings, mean pooling,
        head; ``forward`` returns the 3-way logits."""

        def __init__(self, encoder, head_hidden: int, architecture: str = "clv-cross-v1"):
            super().__init__()
            self.encoder = encoder
            self.architecture = architecture
            self.segment = torch.nn.Embedding(3, encoder.config.hidden_size)
            torch.nn.init.zeros_(self.segment.weight)
            self.head = _head(encoder.config.hidden_size, head_hidden)

        def encode(self, tokenizer, examples: Sequence[TripleExample], max_length: int) -> dict:
            """The keyword arguments of :meth:`forward` for ``examples`` (:func:`encode_cross_triples`)."""
            return encode_cross_triples(tokenizer, examples, max_length)

        def trained_state(self) -> dict:
            """What a classifier folder keeps besides the encoder's adapter: the head and the segment embedding."""
            return {**{f"head.{k}": v for k, v in self.head.state_dict().items()},
                    "segment.weight": self.segment.weight}

        def load_trained_state(self, state: dict) -> None:
            self.head.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})
            self.segment.load_state_dict({"weight": state["segment.weight"]})

        def forward(self, input_ids, attention_mask, segment_ids, labels=None):
            embeddings = self.encoder.get_input_embeddings()(input_ids) + self.segment(segment_ids)
            hidden = self.encoder(inputs_embeds=embeddings, attention_mask=attention_mask).last_hidden_state
            logits = self.head(_mean_pool(hidden, attention_mask))
            loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return TripleOutput(logits, loss)

    return CrossTripleModel if architecture == "clv-cross-v1" else SiameseTripleModel


@dataclass
class TripleOutput:
    logits: object
    loss: object = None


def encode_triples(tokenizer, examples: Sequence[TripleExample], max_length: int, chunk_size: int = 64,
                   cross_pair: bool = False) -> dict:
    """Every distinct text of the batch tokenized once, in chunks of similar length (padding only within a chunk;
    ``position`` puts the chunk outputs back in text order), and per example the text index of its context, its
    response and its persona sentences (padded with index 0 and masked). An empty text is ``[CLS] [SEP]``. With
    ``cross_pair``, also ``pair``: ``[CLS] context [SEP] response [SEP]`` per example (ids, mask, segment ids; at
    most ``2 * max_length`` tokens, cut from the longer side first)."""
    import torch

    rows: dict[str, int] = {}

    def row(text: str) -> int:
        return rows.setdefault(text.strip(), len(rows))

    context = [row(e.context) for e in examples]
    response = [row(e.response) for e in examples]
    personas = [[row(s) for s in e.persona if s.strip()] or [row("")] for e in examples]
    width = max(map(len, personas))
    ids = tokenizer(list(rows), truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    chunks = []
    for start in range(0, len(order), chunk_size):
        part = order[start:start + chunk_size]
        longest = max(len(ids[i]) for i in part)
        chunks.append((torch.tensor([ids[i] + [tokenizer.pad_token_id] * (longest - len(ids[i])) for i in part]),
                       torch.tensor([[1] * len(ids[i]) + [0] * (longest - len(ids[i])) for i in part])))
    position = [0] * len(order)
    for k, i in enumerate(order):
        position[i] = k
    encoded = {"chunks": chunks, "position": torch.tensor(position),
               "context_index": torch.tensor(context), "response_index": torch.tensor(response),
               "persona_index": torch.tensor([p + [0] * (width - len(p)) for p in personas]),
               "persona_mask": torch.tensor([[True] * len(p) + [False] * (width - len(p)) for p in personas])}
    if cross_pair:
        pair = tokenizer([e.context.strip() for e in examples], [e.response.strip() for e in examples],
                         truncation="longest_first", max_length=2 * max_length, padding=True, return_tensors="pt")
        encoded["pair"] = (pair["input_ids"], pair["attention_mask"], pair["token_type_ids"])
    return encoded


def encode_cross_triples(tokenizer, examples: Sequence[TripleExample], max_length: int) -> dict:
    """``[CLS] persona [SEP] context [SEP] response [SEP]`` per example (the persona's sentences joined by spaces),
    right-padded: ``input_ids``, ``attention_mask`` and ``segment_ids`` (each part and the separator after it:
    persona 0 with the ``[CLS]``, context 1, response 2). Context and response keep their first ``max_length``
    tokens, the persona its first ``4 * max_length - 4`` less what they took."""
    import torch

    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    parts = [(" ".join(s.strip() for s in e.persona if s.strip()), e.context.strip(), e.response.strip())
             for e in examples]
    distinct = list(dict.fromkeys(text for texts in parts for text in texts))  # a batch repeats its personas
    ids = dict(zip(distinct, tokenizer(distinct, add_special_tokens=False)["input_ids"]))
    rows, segments = [], []
    for persona_text, context_text, response_text in parts:
        context, response = ids[context_text][:max_length], ids[response_text][:max_length]
        persona = ids[persona_text][:max(0, 4 * max_length - 4 - len(context) - len(response))]
        rows.append([cls, *persona, sep, *context, sep, *response, sep])
        segments.append([PERSONA_SEGMENT] * (len(persona) + 2) + [CONTEXT_SEGMENT] * (len(context) + 1)
                        + [RESPONSE_SEGMENT] * (len(response) + 1))
    longest = max(map(len, rows))
    pad = [longest - len(row) for row in rows]
    return {"input_ids": torch.tensor([row + [tokenizer.pad_token_id] * n for row, n in zip(rows, pad)]),
            "attention_mask": torch.tensor([[1] * len(row) + [0] * n for row, n in zip(rows, pad)]),
            "segment_ids": torch.tensor([seg + [0] * n for seg, n in zip(segments, pad)])}


def to_device(encoded: dict, device) -> dict:
    """:func:`encode_triples` output moved to ``device``."""
    def move(value):
        return value.to(device) if hasattr(value, "to") else type(value)(move(v) for v in value)

    return {k: move(v) for k, v in encoded.items()}


def new_triple_model(backbone: str | Path, head_hidden: int = 128, architecture: str = ARCHITECTURE):
    """(tokenizer, model of ``architecture``) with a fresh head over the backbone encoder (draws from torch's RNG)."""
    from transformers import AutoModel, AutoTokenizer

    from ..errors import ConfigError

    if architecture not in ARCHITECTURES:
        raise ConfigError(f"unknown triple-classifier architecture {architecture!r} "
                          f"(known: {', '.join(ARCHITECTURES)})")
    return AutoTokenizer.from_pretrained(backbone), _model_class(architecture)(AutoModel.from_pretrained(backbone),
                                                                               head_hidden, architecture)


def save_triple_model(model, out_dir: str | Path, backbone: str | Path) -> None:
    """The encoder's adapter (:func:`pdg_eval.models.adapters.save_adapter`), the head (and a cross-encoder's segment
    embedding; fp16) and the head's shape."""
    import torch
    from safetensors.torch import save_file

    from .adapters import save_adapter

    out = Path(out_dir)
    save_adapter(model.encoder, out, backbone)
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in model.trained_state().items()},
              str(out / HEAD_FILE), metadata={"architecture": model.architecture,
                                              "head_hidden": str(model.head[0].out_features)})


def check_triple_classifier(model_dir: str | Path) -> None:
    """Refuse a folder that is not a pdg-eval triple classifier, without loading anything."""
    if not (Path(model_dir) / HEAD_FILE).is_file():
        raise InputError(str(model_dir), None, None, f"not a pdg-eval triple classifier (no {HEAD_FILE}); "
                                                     "build one with `pdg-eval scorers train cohcon --out DIR`")


def load_triple_model(model_dir: str | Path):
    """(tokenizer, model of the folder's architecture) from a folder written by :func:`save_triple_model`."""
    from safetensors import safe_open

    from .adapters import load_adapted_encoder

    model_dir = Path(model_dir)
    check_triple_classifier(model_dir)
    with safe_open(str(model_dir / HEAD_FILE), "pt") as handle:
        head = {k: handle.get_tensor(k).float() for k in handle.keys()}
        hidden = int(handle.metadata()["head_hidden"])
        architecture = handle.metadata().get("architecture", ARCHITECTURE)
    if architecture not in ARCHITECTURES:
        raise InputError(str(model_dir / HEAD_FILE), None, None, f"unknown triple-classifier architecture "
                                                                  f"{architecture!r} (known: {', '.join(ARCHITECTURES)})")
    tokenizer, encoder = load_adapted_encoder(model_dir)
    model = _model_class(architecture)(encoder, hidden, architecture)
    model.load_trained_state(head)
    return tokenizer, model.eval()


class TripleClassifier(PairClassifier):
    """The (persona, context, response) classifier built by ``pdg-eval scorers train cohcon``."""

    def __init__(self, name_or_path: str, device: str = "auto", max_length: int = 64, batch_size: int = 64):
        super().__init__(name_or_path, device, max_length, batch_size)

    def _load(self):
        return load_triple_model(self.model_dir)

    def _length(self, item) -> int:
        return sum(map(len, item.persona)) + len(item.context) + len(item.response)

    def _logits(self, items: Sequence):
        return self.model(**to_device(self.model.encode(self.tokenizer, items, self.max_length), self.device)).logits


def triple_classifier_folder(name_or_path: str) -> ModelFolder:
    """The folder of a triple classifier, checked without loading the model."""
    folder = ModelFolder(name_or_path)
    check_triple_classifier(folder.path)
    return folder


@lru_cache(maxsize=4)
def load_triple_classifier(name_or_path: str, device: str = "auto", max_length: int = 64,
                           batch_size: int = 64) -> TripleClassifier:
    return TripleClassifier(name_or_path, device, max_length, batch_size)
