"""IDL's training and inference sequences (§3.2.3, Eq. 1): the person's reference dialogues, in the order DPI found,
then the target dialogue — never a profile. A :class:`~pdg_eval_methods.common.prompts.Turn` list for
:meth:`~pdg_eval_methods.common.prompts.Formatter.conversation` (chat: an empty system prompt, the person as the assistant).

MSL trains on the target's last reply (``loss_turns: last``, the paper: context + response) or on every reply of the
person in the target dialogue (``all``: LLaMA-Factory's multi-turn masking, which the released scripts use).
"""

from __future__ import annotations

from typing import Sequence

from pdg_eval.errors import ConfigError
from pdg_eval.records import SELF

from pdg_eval_methods.common.data import Session
from pdg_eval_methods.common.prompts import Turn

LOSS_TURNS = ("last", "all")


def reference_turns(references: Sequence[Session]) -> list[Turn]:
    """Every turn of the reference dialogues, in the given order, without loss."""
    return [Turn(text, role) for session in references for text, role in zip(session.turns, session.roles)]


def msl_turns(references: Sequence[Session], target: Session, loss_turns: str = "last") -> list[Turn]:
    """The MSL training sequence: references, then the target dialogue with the loss on its last reply or on
    every reply of the person."""
    if loss_turns not in LOSS_TURNS:
        raise ConfigError(f"loss_turns must be one of {', '.join(LOSS_TURNS)}; got {loss_turns!r}")
    last = len(target.turns) - 1
    own = [Turn(text, role, role == SELF and (loss_turns == "all" or i == last))
           for i, (text, role) in enumerate(zip(target.turns, target.roles))]
    return reference_turns(references) + own


def prompt_turns(references: Sequence[Session], context: Sequence[str]) -> list[Turn]:
    """The generation prompt: references, then the current dialogue so far (its last turn the partner's)."""
    partial = Session("current", "", (*context, ""))  # roles as if a reply followed
    return reference_turns(references) + [Turn(text, role) for text, role in zip(context, partial.roles)]
