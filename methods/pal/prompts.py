"""PAL's prompts (kylokano/PAL@cc8b8b5:persona_datasets.py:319-375 English, 124-171 Chinese).

Three instructions, filled with the numbered persona set ``' 1.<p1> 2.<p2> …'`` and the dialogue history (one
``person1: …`` / ``person2: …`` line per turn, Chinese ``用户1:`` / ``用户2:``), each inside ``'''…'''``:

* **select** — which persona sentence (if any) the next reply should use; target ``"{k+1}.{persona}"`` or
  ``"No personal description."`` (Chinese ``"{k+1}。{persona}"`` / ``"无需个性化信息。"``);
* **generate** — the same plus ``The highlighted personal description: '''…'''`` (the gold line in training, the
  selected line at inference); the reply follows the next speaker's tag;
* **history only** — no persona at all: the stage-1 model's reply to it is DPO's rejected response.

Speaker tags: ``person1`` is whoever spoke first (the release numbers history lines by position), so in ConvAI2, where
the partner opens, the partner is person1 and the responder person2. The next speaker's tag follows the same rule;
the release tags it person2 whenever the history is non-empty, which names the wrong speaker for an even-length
history.

Differences from the release, all in its Chinese path or its inconsistencies (Chinese mirrors English here): the
Chinese *select* prompt receives the numbered set, not the Python repr of the list; the Chinese *generate* prompt
fills its highlighted-description slot (the release leaves the literal ``<related_persona>``); the Chinese select
instruction names the target it trains (``无需个性化信息。``, the release says ``没有个性化信息``); the English
generate instruction is one text for training and inference (the release's inference copy uses straight quotes
around "No personal description," where training used curly ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from pdg_eval.errors import ConfigError

NO_PERSONA = {"en": "No personal description.", "zh": "无需个性化信息。"}
NUMBER_MARK = {"en": ".", "zh": "。"}
SPEAKER_TAGS = {"en": ("person1", "person2"), "zh": ("用户1", "用户2")}

_EN_HEADER = ("You are a helpful and thorough conversational agent. Assume there is a user chatting with you. "
              "You are given a set of personal descriptions and a dialogue history.")
_ZH_HEADER = "你是一个有用的、细致的对话代理。假设有一个用户在和你聊天。提供给你一组个性化信息描述和一个对话历史。"

SELECT = {
    "en": _EN_HEADER + "\n"
    "Your task is first to review the dialogue history and then determine if any one personal description from the "
    "personal descriptions set is relevant to formulating your next response.\n"
    "If no personal descriptions are relevant, respond with \"No personal description.\"\n"
    "If exactly one personal description is relevant, provide only that personal description.\n"
    "The personal descriptions set: {personas}.\n"
    "The dialogue history: {history}.\n",
    "zh": _ZH_HEADER + "\n"
    "你的任务是首先查看对话历史，然后确定是否某个个性化信息描述与生成你的下一个回复相关。\n"
    "如果没有个性化信息描述相关，请回答“无需个性化信息。”。\n"
    "如果恰好有一个个性化信息描述相关，请提供那个个性化信息描述。\n"
    "个性化信息描述：{personas}。\n"
    "对话历史：{history}。\n",
}
GENERATE = {
    "en": _EN_HEADER + " You are also given one highlighted personal description from that list, which is most "
    "relevant to your next response. If the highlighted personal description is “No personal description,” it "
    "means that none of the personal descriptions is appropriate for the next response. \n"
    "Your task is to provide the next turn of the dialogue using the highlighted personal description when "
    "available.\n"
    "The personal descriptions set: {personas}.\n"
    "The dialogue history: {history}.\n"
    "The highlighted personal description: {highlighted}.\n",
    "zh": _ZH_HEADER + "你同时被指出了一个和你的回复最相关的个性化信息描述。如果这个描述是“无需个性化信息”，"
    "那么你就不需要使用个性化信息进行回复。\n"
    "你的任务是依据这个最相关的个性化信息描述生成对话的回复。\n"
    "个性化信息描述：{personas}。\n"
    "对话历史：{history}。\n"
    "最相关的个性化信息描述：{highlighted}。\n",
}
HISTORY_ONLY = {
    "en": "You are a helpful and thorough conversational agent. You have a dialogue history. \n"
    "You should provide the next turn of the dialogue based on the dialogue history. \n"
    "The dialogue history is: {history}.\n",
    "zh": "你是一个有用的、细致的对话代理。假设有一个用户在和你聊天。提供给你对话历史。\n"
    "你的任务是生成对话的回复。\n"
    "对话历史：{history}。\n",
}


def _language(language: str) -> str:
    if language not in NO_PERSONA:
        raise ConfigError(f"PAL prompts exist in {', '.join(NO_PERSONA)}, not {language!r}")
    return language


def quoted(text: str) -> str:
    return f"'''{text}'''"


def persona_set(persona: Sequence[str]) -> str:
    """``' 1.<p1> 2.<p2> …'`` (the release numbers with ``.`` in both languages)."""
    return "".join(f" {k}.{sentence}" for k, sentence in enumerate(persona, start=1))


def speaker_tag(position: int, language: str) -> str:
    """The tag of the dialogue's turn ``position`` (0 = the opener, person1)."""
    return SPEAKER_TAGS[_language(language)][position % 2]


def history_lines(context: Sequence[str], language: str) -> str:
    return "\n".join(f"{speaker_tag(i, language)}: {turn}" for i, turn in enumerate(context))


def next_speaker(context: Sequence[str], language: str) -> str:
    """``'person2: '`` after a partner's opening turn (ConvAI2), ``'person1: '`` for the opener."""
    return f"{speaker_tag(len(context), language)}: "


def persona_line(persona: Sequence[str], index: int, language: str) -> str:
    """The select target / highlighted line for persona ``index`` (0-based; −1 = none)."""
    if index < 0:
        return NO_PERSONA[_language(language)]
    if index >= len(persona):
        raise ConfigError(f"persona label {index} out of range for {len(persona)} persona sentences")
    return f"{index + 1}{NUMBER_MARK[_language(language)]}{persona[index]}"


@dataclass(frozen=True)
class Instruction:
    """One PAL prompt: the instruction text (a user message in chat format) and the assistant's prefix before the
    target (the next speaker's tag for replies, empty for selection)."""

    text: str
    assistant_prefix: str = ""


def select_prompt(persona: Sequence[str], context: Sequence[str], language: str = "en") -> Instruction:
    return Instruction(SELECT[_language(language)].format(personas=quoted(persona_set(persona)),
                                                          history=quoted(history_lines(context, language))))


def generate_prompt(persona: Sequence[str], context: Sequence[str], highlighted: str,
                    language: str = "en") -> Instruction:
    """``highlighted``: a :func:`persona_line` (gold in training, the parsed selection at inference)."""
    text = GENERATE[_language(language)].format(personas=quoted(persona_set(persona)),
                                                history=quoted(history_lines(context, language)),
                                                highlighted=quoted(highlighted))
    return Instruction(text, next_speaker(context, language))


def history_only_prompt(context: Sequence[str], language: str = "en") -> Instruction:
    return Instruction(HISTORY_ONLY[_language(language)].format(history=quoted(history_lines(context, language))),
                       next_speaker(context, language))
