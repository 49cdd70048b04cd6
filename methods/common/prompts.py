"""Dialogue prompts for causal LMs, with the loss mask of every training sequence.

Two formats:

* ``plain`` — pdg-eval's ``pdg-v1`` text (the format ``pdg-eval rank`` and ``ppl`` score with,
  :func:`pdg_eval.models.causal_lm.dialogue_prompt`): ``Persona: ...`` then one ``Partner:`` / ``You:`` line per turn.
  TransferTransfo (Wolf et al. 2019) and PAA's GPT-2 baseline condition on persona + history the same way, with
  speaker markers; the text form works for any tokenizer.
* ``chat`` — the tokenizer's chat template: the persona in the system message (IDL's "System" prompt, IDL A.1),
  the partner as ``user`` and the speaker as ``assistant``.

A sequence is built from segments that are tokenised separately and concatenated, so the trained tokens are exactly
the response tokens, as at generation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from pdg_eval.errors import ConfigError
from pdg_eval.models.causal_lm import dialogue_prompt
from pdg_eval.records import PARTNER, SELF, speaker_roles

T = TypeVar("T")
IDL_SYSTEM = "Here are your persona settings, your reply must be consistent with the persona: {persona}"
FORMATS = ("plain", "chat")


def loss_on_target(prompt_ids: list[int], target_ids: list[int], max_length: int) -> dict[str, list[int]]:
    """One training sequence with the loss on the target only: the target keeps at most ``max_length - 1`` tokens,
    the prompt what is left of ``max_length``, cut from the left."""
    target_ids = target_ids[:max_length - 1]
    prompt_ids = prompt_ids[-(max_length - len(target_ids)):] if max_length - len(target_ids) > 0 else []
    return {"input_ids": prompt_ids + target_ids, "labels": [-100] * len(prompt_ids) + target_ids}


def fit_history(build: Callable[[list[str]], T], context: Sequence[str], fits: Callable[[T], bool],
                step: int = 2) -> T:
    """``build(history)`` for the longest suffix of ``context`` whose result ``fits``: the oldest turns are dropped
    ``step`` at a time (2 keeps every turn's speaker), never the last ``step`` turns; what is built from those is
    returned even if it does not fit (the caller then cuts it)."""
    history = list(context)
    while True:
        built = build(history)
        if fits(built) or len(history) <= step:
            return built
        history = history[step:]


@dataclass
class Formatter:
    tokenizer: object
    format: str = "plain"
    with_persona: bool = True
    system_template: str = IDL_SYSTEM

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"prompt format must be one of {', '.join(FORMATS)}; got {self.format!r}")
        if self.format == "chat" and not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError("prompt format 'chat' needs a tokenizer with a chat template (e.g. smollm2); "
                              "use format 'plain'")

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # -- prompts ----------------------------------------------------------------------------------------------
    def prompt(self, persona: Sequence[str], context: Sequence[str], preamble: str = "") -> str:
        """The text a response follows."""
        persona = persona if self.with_persona else ()
        if self.format == "plain":
            body = dialogue_prompt(persona, context)
            return f"{preamble}\n{body}" if preamble else body
        return self.tokenizer.apply_chat_template(self._messages(persona, context, preamble), tokenize=False,
                                                  add_generation_prompt=True)

    def _messages(self, persona: Sequence[str], context: Sequence[str], preamble: str = "") -> list[dict[str, str]]:
        system = self.system_template.format(persona=" ".join(persona)) if persona else ""
        if preamble:
            system = f"{system}\n{preamble}".strip()
        messages = [{"role": "system", "content": system}]
        for role, turn in zip(speaker_roles(len(context)), context):
            messages.append({"role": "user" if role == PARTNER else "assistant", "content": turn})
        return messages

    def prompt_ids(self, persona: Sequence[str], context: Sequence[str], max_tokens: int, preamble: str = "") -> list[int]:
        """Prompt token ids of at most ``max_tokens`` (0: no limit): the oldest turns are dropped two at a time
        (:func:`fit_history`), so the persona, the template's header and the speakers' order stay; only a prompt
        that is too long with its last two turns alone is cut from the left."""
        def build(history: list[str]) -> list[int]:
            return self.ids(self.prompt(persona, history, preamble))

        if not max_tokens:
            return build(list(context))
        return fit_history(build, context, lambda ids: len(ids) <= max_tokens)[-max_tokens:]

    def instruction(self, text: str, assistant_prefix: str = "") -> str:
        """An instruction prompt (PAL's): plain — the text, then ``"\n" + assistant_prefix`` when there is one (as
        kylokano/PAL@cc8b8b5's GPT-2 path); chat — the text as the only user message, and the assistant turn opened
        with ``assistant_prefix``."""
        if self.format == "plain":
            return f"{text}\n{assistant_prefix}" if assistant_prefix else text
        return self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                  add_generation_prompt=True) + assistant_prefix

    def instruction_parts(self, text: str, assistant_prefix: str, target: str) -> tuple[list[int], list[int]]:
        """Token ids of :meth:`instruction` and of ``target`` after it (+ end of sequence; chat: the template's end
        of turn) — the prompt and the completion of a training or preference sequence."""
        prompt = self.instruction(text, assistant_prefix)
        if self.format == "plain":
            eos = self.tokenizer.eos_token_id
            target_ids = self.ids(target.strip()) + ([eos] if eos is not None else [])
        else:
            full = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}, {"role": "assistant", "content": assistant_prefix + target.strip()}],
                tokenize=False)
            if not full.startswith(prompt):
                raise ConfigError("the chat template does not extend the prompt with the reply; use format 'plain'")
            target_ids = self.ids(full[len(prompt):])
        return self.ids(prompt), target_ids

    def instruction_turn(self, text: str, assistant_prefix: str, target: str, max_length: int
                         ) -> dict[str, list[int]]:
        """:meth:`instruction` + ``target`` (:meth:`instruction_parts`), loss on the target only; the prompt is cut
        from the left."""
        return loss_on_target(*self.instruction_parts(text, assistant_prefix, target), max_length)

    # -- training sequences --------------------------------------------------------------------------------
    def response_segment(self, response: str, final: bool = True) -> str:
        """The target text after a prompt: ``" response"`` (plain; end-of-sequence added as a token) or the chat
        template's assistant turn."""
        if self.format == "plain":
            return " " + response.strip() + ("" if final else "\n")
        raise AssertionError("chat targets come from _chat_target")

    def _chat_target(self, persona: Sequence[str], context: Sequence[str], response: str) -> tuple[str, str]:
        persona = persona if self.with_persona else ()
        prompt = self.tokenizer.apply_chat_template(self._messages(persona, context), tokenize=False,
                                                    add_generation_prompt=True)
        full = self.tokenizer.apply_chat_template(self._messages(persona, context)
                                                  + [{"role": "assistant", "content": response.strip()}],
                                                  tokenize=False)
        if not full.startswith(prompt):
            raise ConfigError("the chat template does not extend the prompt with the reply; use format 'plain'")
        return prompt, full[len(prompt):]

    def single_turn(self, persona: Sequence[str], context: Sequence[str], response: str, max_length: int
                    ) -> dict[str, list[int]]:
        """Prompt + response (+ end-of-sequence), loss on the response only; a sequence longer than ``max_length``
        loses its oldest turns two at a time (:func:`fit_history`), then, if still too long, the prompt is cut from
        the left."""
        eos = self.tokenizer.eos_token_id

        def build(history: list[str]) -> tuple[list[int], list[int]]:
            if self.format == "plain":
                return (self.ids(self.prompt(persona, history)),
                        self.ids(self.response_segment(response)) + ([eos] if eos is not None else []))
            prompt, target_text = self._chat_target(persona, history, response)
            return self.ids(prompt), self.ids(target_text)

        prompt_ids, target = fit_history(build, context, lambda built: len(built[0]) + len(built[1]) <= max_length)
        return loss_on_target(prompt_ids, target, max_length)

    def whole_dialogue(self, persona: Sequence[str], turns: Sequence[str], max_length: int) -> dict[str, list[int]]:
        """A dialogue as one sequence (``turns`` alternate partner/speaker, the speaker's reply last), loss on every
        speaker turn — IDL's "FT" baseline (each conversation an independent example)."""
        persona = persona if self.with_persona else ()
        roles = speaker_roles(len(turns), last=SELF)  # the speaker's reply is last
        system = None
        if persona:
            system = (f"Persona: {' '.join(s.strip() for s in persona)}" if self.format == "plain"
                      else self.system_template.format(persona=" ".join(persona)))
        return self.conversation([Turn(t, r, r == SELF) for t, r in zip(turns, roles)], max_length, system)

    # -- multi-turn sequences ----------------------------------------------------------------------------------
    def _segments(self, turns: Sequence["Turn"], system: str | None, generation: bool
                  ) -> list[tuple[list[int], bool]]:
        """(token ids, carries loss) pieces: the system header, then per turn its header and its body."""
        eos = self.tokenizer.eos_token_id
        if self.format == "plain":
            pieces: list[tuple[list[int], bool]] = [(self.ids(system + "\n"), False)] if system else []
            for i, turn in enumerate(turns):
                if turn.role == PARTNER:
                    pieces.append((self.ids(f"Partner: {turn.text}\n"), False))
                    continue
                final = i == len(turns) - 1 and not generation
                body = self.ids(self.response_segment(turn.text, final=final)) + ([eos] if final and eos is not None
                                                                                     else [])
                pieces += [(self.ids("You:"), False), (body, turn.loss)]
            if generation:
                pieces.append((self.ids("You:"), False))
            return pieces
        messages = [{"role": "system", "content": system}] if system is not None else []
        rendered = ""
        pieces = []
        if messages:
            rendered = self.tokenizer.apply_chat_template(messages, tokenize=False)
            pieces.append((self.ids(rendered), False))
        for turn in turns:
            role = "user" if turn.role == PARTNER else "assistant"
            messages = [*messages, {"role": role, "content": turn.text.strip()}]
            full = self.tokenizer.apply_chat_template(messages, tokenize=False)
            self._extends(rendered, full)
            piece = full[len(rendered):]
            if role == "assistant":  # the turn's opening (role header) carries no loss
                start = piece.find(turn.text.strip()) if turn.text.strip() else len(piece)
                if start < 0:
                    raise ConfigError("the chat template changes the reply's text; use format 'plain'")
                pieces += [(self.ids(piece[:start]), False), (self.ids(piece[start:]), turn.loss)]
            else:
                pieces.append((self.ids(piece), False))
            rendered = full
        if generation:
            opened = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            self._extends(rendered, opened)
            pieces.append((self.ids(opened[len(rendered):]), False))
        return pieces

    @staticmethod
    def _extends(prefix: str, text: str) -> None:
        if not text.startswith(prefix):
            raise ConfigError("the chat template does not render a conversation as the extension of its beginning; "
                              "use format 'plain'")

    def conversation(self, turns: Sequence["Turn"], max_length: int, system: str | None = None,
                     generation: bool = False) -> dict[str, list[int]]:
        """Whole turns as one sequence — chat: the template's messages (a ``system`` message first when one is
        given, even an empty one — without it some templates insert their default; partner = user, speaker =
        assistant); plain: ``system``, then ``Partner:`` / ``You:`` lines — with the loss on the
        text (and end of turn) of every turn marked ``loss``; ``generation`` appends the speaker's opening (a
        prompt). Too long for ``max_length``: the oldest turns are dropped whole (the system part stays); a single
        remaining turn that still does not fit is cut from the left."""
        turns = list(turns)

        def fitting(start: int) -> list[tuple[list[int], bool]] | None:
            pieces = self._segments(turns[start:], system, generation)
            return pieces if sum(len(ids) for ids, _ in pieces) <= max_length else None

        pieces = fitting(0)
        if pieces is None:  # the fewest turns to drop: a binary search (the length only shrinks as turns go)
            high = max(len(turns) - 1, 0)  # one turn always stays
            low = min(1, high)
            while low < high:
                middle = (low + high) // 2
                if fitting(middle) is None:
                    low = middle + 1
                else:
                    high = middle
            pieces = fitting(low) or self._segments(turns[low:], system, generation)
        input_ids = [t for ids, _ in pieces for t in ids]
        labels = [t if loss else -100 for ids, loss in pieces for t in ids]
        return {"input_ids": input_ids[-max_length:], "labels": labels[-max_length:]}


@dataclass(frozen=True)
class Turn:
    """One turn of a :meth:`Formatter.conversation`: its text, its speaker role (PARTNER / SELF), and whether the
    training loss covers it."""

    text: str
    role: str
    loss: bool = False
