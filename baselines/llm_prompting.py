"""Prompt-only LLM baselines of IDL (§4.2), no training:

* ``llm_system`` — IDL's "System": the profile in the system instruction ("Here are your persona settings, your
  reply must be consistent with the persona: {profile}", IDL A.1), then the dialogue.
* ``llm_icl`` — IDL's "ICL": no profile; the person's *other* dialogues (same speaker = same persona in ConvAI2, as
  IDL groups users) are put before the current one as in-context demonstrations.

With ``format: chat`` the tokenizer's chat template is used (SmolLM2-Instruct: ChatML); ``plain`` works for any
model (pdg-v1 text, the demonstrations as transcripts before it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from pdg_eval_methods.common.config import DecodingConfig
from pdg_eval_methods.common.data import Example, Session, load_dataset, sessions, sessions_by_speaker
from pdg_eval_methods.common.method import register
from pdg_eval.records import SELF

from .causal_lm import CausalLMMethod, CausalLMOptions


@dataclass
class SystemOptions(CausalLMOptions):
    format: str = "chat"


@register("llm_system")
class SystemPrompt(CausalLMMethod):
    description = "IDL's System baseline: the persona in the system instruction, no training"
    Options = SystemOptions
    trainable = False


@dataclass
class ICLOptions(CausalLMOptions):
    format: str = "chat"
    with_persona: bool = False  # IDL's ICL is profile-free
    demonstrations: int = 2  # at most this many of the speaker's other dialogues (from data.reference_pool)


def transcript(session: Session) -> str:
    """A finished dialogue as ``Partner:`` / ``You:`` lines (the last turn is the speaker's)."""
    return "\n".join(f"{'You' if role == SELF else 'Partner'}: {turn}" for role, turn in zip(session.roles,
                                                                                            session.turns))


@register("llm_icl")
class InContextLearning(CausalLMMethod):
    description = "IDL's ICL baseline: the speaker's other dialogues as demonstrations, no profile, no training"
    Options = ICLOptions
    trainable = False

    def prepare(self, examples: Sequence[Example]) -> None:
        """Index every dialogue of ``data.reference_pool`` (default: the evaluation examples) by speaker."""
        spec = self.config.data.reference_pool
        pool = list(examples) if spec is None else load_dataset(spec)
        self.sessions = sessions_by_speaker(pool)
        self.full = sessions(pool)

    def demonstrations_for(self, example: Example) -> list[str]:
        others = [d for d in getattr(self, "sessions", {}).get(example.speaker, []) if d != example.dialogue_id]
        return others[:self.options.demonstrations]

    def preamble(self, example: Example) -> str:
        shown = self.demonstrations_for(example)
        if not shown:
            return ""
        parts = [f"Conversation {k + 1}:\n{transcript(self.full[d])}" for k, d in enumerate(shown)]
        return ("Here are earlier conversations of yours with other people; reply in the same persona and style.\n\n"
                + "\n\n".join(parts) + "\n\nCurrent conversation:")

    def prompt_ids(self, example: Example, decoding: DecodingConfig) -> list[int]:
        return self.formatter.prompt_ids(example.persona, self.context_of(example), decoding.max_prompt_tokens,
                                         preamble=self.preamble(example))
