"""PAL's prompt strings on real ConvAI2 turns and a Chinese CLV sample, against hand-written expectations."""

import pytest

from pdg_eval_methods.common.data import load_dataset
from pdg_eval_methods.pal.prompts import (NO_PERSONA, generate_prompt, history_only_prompt, next_speaker, persona_line,
                                 select_prompt)
from pdg_eval.errors import ConfigError
from tests.conftest import shared_or_skip

HEADER = ("You are a helpful and thorough conversational agent. Assume there is a user chatting with you. "
          "You are given a set of personal descriptions and a dialogue history.")
PERSONAS = ("''' 1.i read twenty books a year. 2.i'm a stunt double as my second job. 3.i only eat kosher. "
            "4.i was raised in a single parent household.'''")


@pytest.fixture(scope="module")
def convai2_turns():
    examples = load_dataset(str(shared_or_skip("data", "convai2", "valid_self_original.txt")))
    return examples[0], examples[1]


def test_select_prompt_and_target_on_the_first_convai2_turn(convai2_turns):
    first, _ = convai2_turns
    prompt = select_prompt(first.persona, first.context)
    assert prompt.text == (
        HEADER + "\n"
        "Your task is first to review the dialogue history and then determine if any one personal description from "
        "the personal descriptions set is relevant to formulating your next response.\n"
        'If no personal descriptions are relevant, respond with "No personal description."\n'
        "If exactly one personal description is relevant, provide only that personal description.\n"
        f"The personal descriptions set: {PERSONAS}.\n"
        "The dialogue history: '''person1: hello what are doing today ?'''.\n")
    assert prompt.assistant_prefix == ""
    assert persona_line(first.persona, 1, "en") == "2.i'm a stunt double as my second job."
    assert persona_line(first.persona, -1, "en") == "No personal description."


def test_generate_prompt_on_the_second_convai2_turn(convai2_turns):
    _, second = convai2_turns
    prompt = generate_prompt(second.persona, second.context, persona_line(second.persona, 0, "en"))
    assert prompt.text == (
        HEADER + " You are also given one highlighted personal description from that list, which is most relevant "
        "to your next response. If the highlighted personal description is “No personal description,” it means that "
        "none of the personal descriptions is appropriate for the next response. \n"
        "Your task is to provide the next turn of the dialogue using the highlighted personal description when "
        "available.\n"
        f"The personal descriptions set: {PERSONAS}.\n"
        "The dialogue history: '''person1: hello what are doing today ?\n"
        "person2: i am good , i just got off work and tired , i have two jobs .\n"
        "person1: i just got done watching a horror movie'''.\n"
        "The highlighted personal description: '''1.i read twenty books a year.'''.\n")
    assert prompt.assistant_prefix == "person2: "
    assert second.response == "i rather read , i've read about 20 books this year ."


def test_history_only_prompt_has_no_persona_text(convai2_turns):
    _, second = convai2_turns
    prompt = history_only_prompt(second.context)
    assert prompt.text == (
        "You are a helpful and thorough conversational agent. You have a dialogue history. \n"
        "You should provide the next turn of the dialogue based on the dialogue history. \n"
        "The dialogue history is: '''person1: hello what are doing today ?\n"
        "person2: i am good , i just got off work and tired , i have two jobs .\n"
        "person1: i just got done watching a horror movie'''.\n")
    assert prompt.assistant_prefix == "person2: "
    assert not any(sentence.rstrip(".") in prompt.text for sentence in second.persona)
    assert "personal description" not in prompt.text


def test_chinese_prompts_mirror_the_english_ones():
    example = load_dataset(str(shared_or_skip("data", "zh", "clv_samples", "Person_Dialog_ZH_train.txt")))[0]
    assert example.context == () and example.persona[0] == "我会在两个月内搬去上海。"
    select = select_prompt(example.persona, example.context, "zh")
    assert select.text == (
        "你是一个有用的、细致的对话代理。假设有一个用户在和你聊天。提供给你一组个性化信息描述和一个对话历史。\n"
        "你的任务是首先查看对话历史，然后确定是否某个个性化信息描述与生成你的下一个回复相关。\n"
        "如果没有个性化信息描述相关，请回答“无需个性化信息。”。\n"
        "如果恰好有一个个性化信息描述相关，请提供那个个性化信息描述。\n"
        "个性化信息描述：''' 1.我会在两个月内搬去上海。 2.我最喜欢的乐队是黑豹乐队。 3.我在加油站做出纳。'''。\n"
        "对话历史：''''''。\n")
    generate = generate_prompt(example.persona, example.context, persona_line(example.persona, 2, "zh"), "zh")
    assert generate.text.endswith("最相关的个性化信息描述：'''3。我在加油站做出纳。'''。\n")
    assert "<related_persona>" not in generate.text
    assert generate.assistant_prefix == "用户1: "  # the responder opens the dialogue
    assert persona_line(example.persona, -1, "zh") == NO_PERSONA["zh"] == "无需个性化信息。"
    assert history_only_prompt(["你好", "你好呀"], "zh").text == (
        "你是一个有用的、细致的对话代理。假设有一个用户在和你聊天。提供给你对话历史。\n你的任务是生成对话的回复。\n"
        "对话历史：'''用户1: 你好\n用户2: 你好呀'''。\n")


def test_speaker_tags_follow_the_opener():
    assert next_speaker([], "en") == "person1: "
    assert next_speaker(["hi"], "en") == "person2: "
    assert next_speaker(["hi", "hello"], "en") == "person1: "  # the release would say person2 here
    assert history_only_prompt(["hi", "hello"]).assistant_prefix == "person1: "


def test_bad_labels_and_languages_are_refused():
    with pytest.raises(ConfigError, match="persona label 4 out of range for 4 persona sentences"):
        persona_line(("a", "b", "c", "d"), 4, "en")
    with pytest.raises(ConfigError, match="PAL prompts exist in en, zh, not 'fr'"):
        select_prompt(("a",), ("hi",), "fr")
