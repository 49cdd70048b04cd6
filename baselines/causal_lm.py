"""Causal-LM fine-tuning baselines.

* ``causal_lm_ft`` — TransferTransfo-style fine-tuning (Wolf et al. 2019; PAA's GPT-2 baseline,
  ``hqsiswiliam/persona-adaptive-attention@2539c5c``): persona + dialogue history as the prompt, loss on the response only. ``model.with_persona: false`` gives the
  profile-free variant.
* ``dialogue_ft`` — IDL's "FT" baseline (IDL §4.2): every conversation is one independent training example, loss on
  all of the speaker's turns, no profile (``model.with_persona: true`` is IDL's "gold": FT with the profile).
  Generation is per turn, as for ``causal_lm_ft``.

Both run on any causal LM backbone (hub id, local folder, ``smollm2``, ``random:gpt2``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pdg_eval_methods.common.backbones import load_causal_lm
from pdg_eval_methods.common.config import DecodingConfig
from pdg_eval_methods.common.data import Example, last_turns
from pdg_eval_methods.common.generation import generate_causal_lm
from pdg_eval_methods.common.method import Method, register
from pdg_eval_methods.common.prompts import Formatter


@dataclass
class CausalLMOptions:
    format: str = "plain"  # plain (pdg-v1 text) | chat (the tokenizer's chat template, persona as system message)
    with_persona: bool = True
    max_context_turns: int | None = None  # keep only the last N context turns (None: all)


class CausalLMMethod(Method):
    """Shared by the causal-LM baselines: build from a backbone or a trained folder, prompt, generate."""

    Options = CausalLMOptions

    def build(self, checkpoint: Path | None = None) -> None:
        self.model, self.tokenizer, self.backbone_info = load_causal_lm(
            self.config.backbone, checkpoint, self.config.seed, self.config.backbone_overrides)
        self.formatter = Formatter(self.tokenizer, self.options.format, self.options.with_persona)

    def context_of(self, example: Example) -> tuple[str, ...]:
        keep = self.options.max_context_turns
        return example.context[-keep:] if keep else example.context

    def prompt_ids(self, example: Example, decoding: DecodingConfig) -> list[int]:
        return self.formatter.prompt_ids(example.persona, self.context_of(example), decoding.max_prompt_tokens)

    def generate(self, examples: Sequence[Example], decoding: DecodingConfig, progress: bool = False) -> list[str]:
        prompts = [self.prompt_ids(example, decoding) for example in examples]
        texts, self.generated_tokens = generate_causal_lm(self.model, self.tokenizer, prompts, decoding, progress)
        return texts


@register("causal_lm_ft")
class CausalLMFineTuning(CausalLMMethod):
    description = "TransferTransfo-style causal-LM fine-tuning: persona + history -> response (loss on the response)"

    def features(self, example: Example) -> list[dict[str, Any]]:
        return [self.formatter.single_turn(example.persona, self.context_of(example), example.response,
                                           self.config.training.max_length)]


@dataclass
class DialogueOptions(CausalLMOptions):
    with_persona: bool = False


@register("dialogue_ft")
class DialogueFineTuning(CausalLMMethod):
    description = "IDL's FT baseline: each conversation one training example, loss on every speaker turn"
    Options = DialogueOptions

    def training_examples(self, examples: Sequence[Example]) -> list[Example]:
        """The last turn of each dialogue: its context + response is the whole conversation."""
        return last_turns(examples)

    def features(self, example: Example) -> list[dict[str, Any]]:
        turns = [*example.context, example.response]
        return [self.formatter.whole_dialogue(example.persona, turns, self.config.training.max_length)]
