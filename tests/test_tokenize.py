"""Named tokenizers: expected tokens, and parity of pdg-eval's faster 13a with sacreBLEU's."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from pdg_eval.errors import ConfigError
from pdg_eval.readers import read_convai2
from pdg_eval.tokenize import TOKENIZERS, convai2_style, get_tokenizer, pad_punctuation, tokenize_13a


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(list("ab09 .,-&;<>\"'\n\t!?()[]{}|~`^_/\\@#$%*+=:") +
                                ["&amp;", "&quot;", "&lt;", "&gt;", "<skipped>", "-\n", "é", "中"])).map("".join))
def test_13a_equals_sacrebleu_on_random_text(text):
    assert tokenize_13a(text) == Tokenizer13a()(text)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(list("ab .,-&;'\n!?()") + ["&amp;", "<skipped>", "-\n", "...", ",.", "é"])).map("".join))
def test_13a_equals_sacrebleu_on_random_text_without_digits(text):  # the one-table path
    assert tokenize_13a(text) == Tokenizer13a()(text)


def test_13a_equals_sacrebleu_on_convai2(convai2_valid):
    reference = Tokenizer13a()
    texts = set()
    for turn in read_convai2(convai2_valid):
        texts.update([turn.response, turn.context[-1], *turn.persona, *(turn.candidates or [])])
    assert len(texts) > 20000
    assert all(tokenize_13a(t) == reference(t) for t in texts)


@pytest.mark.parametrize("name,text,tokens", [
    ("whitespace", "i like  dogs .", ("i", "like", "dogs", ".")),
    ("treebank", "I don't like dogs!", ("I", "do", "n't", "like", "dogs", "!")),
    ("parlai", "I don't like THE dogs!", ("i", "don", "t", "like", "dogs")),
    ("13a", "dogs, cats.", ("dogs", ",", "cats", ".")),
    ("zh", "我喜欢 dogs", ("我", "喜", "欢", "dogs")),
    ("punct", "i'm ok.", ("i", "'", "m", "ok", ".")),
    ("char", "我 喜欢", ("我", "喜", "欢")),
    ("jieba", "我喜欢唱歌", ("我", "喜欢", "唱歌")),
    ("bert-wordpiece", "I like snowboarding", ("i", "like", "snow", "##boarding")),
    ("cl100k", "i like dogs .", ("i", " like", " dogs", " .")),
    ("rouge-score", "I liked Guitars!", ("i", "like", "guitar")),
    ("rouge-score-nostem", "I liked Guitars!", ("i", "liked", "guitars")),
])
def test_tokenizer_outputs(name, text, tokens):
    assert get_tokenizer(name)(text) == tokens


def test_every_tokenizer_is_listed_and_fingerprinted():
    assert len(TOKENIZERS) == 12
    assert get_tokenizer("cl100k").signature == "cl100k@223921b76ee9"
    assert get_tokenizer("bert-wordpiece").signature.startswith("bert-wordpiece@")
    with pytest.raises(ConfigError, match="unknown tokenizer 'spacy'"):
        get_tokenizer("spacy")


def paa_pad_punctuation(text: str) -> str:
    """PAA's own loop (hqsiswiliam/persona-adaptive-attention@2539c5c: evaluation/evaluation_helper.py:40-57)."""
    import re
    import string

    for mark in string.punctuation:
        text = text.replace(mark, f" {mark} ")
    return re.sub(" +", " ", text).strip()


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(list("ab .,-'\n\t!?()   ") + ["é", "中", "..."])).map("".join))
def test_punct_padding_equals_paa_loop(text):
    assert pad_punctuation(text) == paa_pad_punctuation(text)
    assert get_tokenizer("punct")(text) == tuple(paa_pad_punctuation(text).split(" "))


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["running", "Cats", "sses", "ies", "agreed", "ab", " ", "  ", "\n", ".", "é", "x9",
                                 "feed", "happily", "generalization", "-", "ing", "eed"])).map("".join))
def test_rouge_score_tokens_equal_the_library(text):
    from nltk.stem import porter
    from rouge_score import tokenize

    assert get_tokenizer("rouge-score")(text) == tuple(tokenize.tokenize(text, porter.PorterStemmer()))
    assert get_tokenizer("rouge-score-nostem")(text) == tuple(tokenize.tokenize(text, None))


def test_convai2_style_lowercases_and_spaces_sentence_punctuation_only():
    assert convai2_style("Hi, I'm Ann!  What's up?!\nI like tea; you?") == \
        "hi , i'm ann ! what's up ? ! i like tea ; you ?"
    assert convai2_style("  ") == "" and convai2_style("3.5 km: ok.") == "3 . 5 km : ok ."
