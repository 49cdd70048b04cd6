"""pdg_eval.fast_treebank.treebank_tokenize returns exactly nltk.word_tokenize(text, preserve_line=True):
on random text built to hit every NLTKWordTokenizer rule, on every real ConvAI2 / model-output text
in ../shared, and on hand-picked edge cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.tokenize import word_tokenize

from pdg_eval.fast_treebank import _fast_path, treebank_tokenize
from pdg_eval.files import shared_path


def nltk_tokens(text: str) -> list[str]:
    return word_tokenize(text, preserve_line=True)


# ---------------------------------------------------------------------------------------------
# (a) Property tests
# ---------------------------------------------------------------------------------------------

_CHARS = list("abcnstdmlreyvwoAZSTNDMLREV019 \t\n.,?!';:@#$%&*\"`()[]{}<>-\u2013\u2014\u2026")
_CLITICS = ["'s", "'re", "n't", "'ll", "'ve", "'m", "'d", "'S", "'RE", "N'T", "'LL", "'VE", "'M", "'D",
            "'t", "'n", "'ye"]
_WORDS = ["cannot", "gimme", "gonna", "gotta", "lemme", "more'n", "wanna", "tis", "twas", "'tis", "'twas",
          "d'ye", "CanNot", "Wanna", "i", "you", "do", "3.5", "1,000", "10:30"]
_MULTI = ["..", "...", "--", "---", "''", "``", "  ", " '", "' ", ". ", ", ", "?!", "\u00ab", "\u00bb",
          "\u201c", "\u201d", "\u2018", "\u2019", "\u2012", "\u2015", "\u00e9"]
# Everything above: every rule of NLTKWordTokenizer has its trigger characters in here.
stress_text = st.lists(st.sampled_from(_CHARS + _CLITICS + _WORDS + _MULTI), max_size=25).map("".join)

# Only pieces the fast path accepts (printable ASCII without '"' and '`'), so that almost every
# example runs the fast path instead of falling back to NLTK.
_FAST_PIECES = [p for p in _CHARS + _CLITICS + _WORDS + _MULTI
                if p.isascii() and all(" " <= c <= "~" for c in p) and '"' not in p and "`" not in p
                and p != "''"] + ["_", "/", "+", "=", "~", "|", "\\", "^"]
fast_text = st.lists(st.sampled_from(_FAST_PIECES), max_size=25).map("".join)


@settings(max_examples=2500, deadline=None)
@given(text=stress_text)
def test_equals_nltk_on_stress_alphabet(text):
    assert treebank_tokenize(text) == nltk_tokens(text)


@settings(max_examples=2500, deadline=None)
@given(text=fast_text)
def test_fast_path_equals_nltk(text):
    tokens = _fast_path(text)
    if tokens is not None:
        assert tokens == nltk_tokens(text)
    assert treebank_tokenize(text) == nltk_tokens(text)


# ---------------------------------------------------------------------------------------------
# (b) Every real text in ../shared
# ---------------------------------------------------------------------------------------------


def _data(*parts: str):
    try:
        return shared_path("data", *parts)
    except FileNotFoundError:
        pytest.skip(f"shared data not available: data/{'/'.join(parts)}")


def _convai2_texts() -> list[str]:
    """Persona lines, partner utterances, gold responses and every candidate."""
    texts = []
    for line in _data("convai2", "valid_self_original.txt").read_text("utf-8").splitlines():
        _, _, rest = line.partition(" ")
        if rest.startswith("your persona:"):
            texts.append(rest[len("your persona:"):].strip())
            continue
        fields = rest.split("\t")
        texts.extend(fields[:2])
        if len(fields) > 3:
            texts.extend(fields[3].split("|"))
    return texts


def _output_texts() -> list[str]:
    texts = []
    for path in sorted(_data("outputs", "sc_gpt").glob("hyp-*")):
        texts.extend(path.read_text("utf-8").splitlines())
    for line in _data("outputs", "paa", "PAA.txt").read_text("utf-8").splitlines():
        if line.startswith(("PD:", "GT:")):
            texts.append(line[3:])  # as written, leading and trailing space included
            texts.append(line[3:].strip())
    return texts


def test_equals_nltk_on_convai2_valid():
    texts = sorted(set(_convai2_texts()))
    assert len(texts) > 20_000
    mismatches = [t for t in texts if treebank_tokenize(t) != nltk_tokens(t)]
    assert mismatches == []
    # The point of the module: nearly all real dialogue text takes the fast path.
    fast = sum(_fast_path(t) is not None for t in texts)
    assert fast / len(texts) > 0.99


def test_equals_nltk_on_model_outputs():
    texts = sorted(set(_output_texts()))
    assert len(texts) > 10_000
    mismatches = [t for t in texts if treebank_tokenize(t) != nltk_tokens(t)]
    assert mismatches == []


# ---------------------------------------------------------------------------------------------
# (c) Hand-written edge cases
# ---------------------------------------------------------------------------------------------

EXPECTED = {
    "i'm good , thanks ! you ?": ["i", "'m", "good", ",", "thanks", "!", "you", "?"],
    "i am good , i just got off work and tired , i have two jobs .":
        ["i", "am", "good", ",", "i", "just", "got", "off", "work", "and", "tired", ",", "i", "have", "two",
         "jobs", "."],
    "hi, how are you doing? i'm getting ready to do some cheetah chasing.":
        ["hi", ",", "how", "are", "you", "doing", "?", "i", "'m", "getting", "ready", "to", "do", "some",
         "cheetah", "chasing", "."],
    "i cannot , i'm gonna wanna go": ["i", "can", "not", ",", "i", "'m", "gon", "na", "wan", "na", "go"],
    "it costs 3,000 dollars at 10:30 : ok": ["it", "costs", "3,000", "dollars", "at", "10:30", ":", "ok"],
    "wait... what.": ["wait", "...", "what", "."],
    "don't've": ["don't", "'ve"],      # ENDING_QUOTES[5] splits each chunk once, at its end
    "x'lln't": ["x'll", "n't"],
    "ab's' x": ["ab", "'s", "'", "x"],  # PUNCTUATION[8] ("' ") splits before the clitic rules ...
    "ab's'": ["ab's", "'"],            # ... only when a space follows the quote,
    "ab's'*": ["ab's", "'", "*"],      # ... and '*' is padded only after it
}

EDGE_CASES = list(EXPECTED) + [
    "", " ", "  \t\n ", ".", "..", " .", "a.", "a. ", "a .", "'", "' '", "'s", "x's", "'hello' there",
    "hello.'", "hello.' ' ", "(hi.)", "[ok.] ", "hi.>", "3.5.", "a,", "a,b", ",1", "a:", "a:b", "a,,b",
    "a,:b", "a:,b", "::", "hi;there@you#1$2%3&4*5", "a--b---c", "(x)[y]{z}<w>", "'tis true", "x 'twas",
    "d'ye", "more'n", "Gimme LEMME GOTTA", "I'M FINE, DON'T YOU'LL WE'RE THEY'VE HE'D SHE'S",
    "dogs' bones", "o'clock", "rock 'n' roll", "''quoted''", "\"quoted\"", "``quoted''", "it\u2019s",
    "caf\u00e9", "a\u2013b\u2014c", "tab\tseparated", "new\nline.", "a.\n", "hi !!! ?? ...",
    "wanna\tgo", "wanna", "cannot.", "i_am a_b", "x\\y/z+w=v^u~t|s",
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_equal_nltk(text):
    assert treebank_tokenize(text) == nltk_tokens(text)


@pytest.mark.parametrize("text,tokens", list(EXPECTED.items()))
def test_expected_tokens(text, tokens):
    assert treebank_tokenize(text) == tokens


@pytest.mark.parametrize("text", list(EXPECTED)[:4])
def test_dialogue_text_takes_fast_path(text):
    assert _fast_path(text) is not None


@pytest.mark.parametrize("text", ['say "hi"', "a,,b", "caf\u00e9", "tab\tseparated", "''x", "`x"])
def test_unhandled_text_falls_back(text):
    assert _fast_path(text) is None
    assert treebank_tokenize(text) == nltk_tokens(text)
