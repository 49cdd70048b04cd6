"""Word-overlap metrics: ParlAI F1, persona F1 (P-F1) and persona coverage (P-Cover / P-Co).

"History" for the persona metrics is explicit (``history_source``):
``persona`` sentences, the ``last_turn`` of the context, the bot's ``last_bot_turn`` (IDL's
``history[1::2][-1:]``), all ``bot_turns``, or the whole ``context``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError
from ..records import Record
from ..files import file_sha256
from .base import ItemScore, choice_option, option, register_metric, text_option
from .ngrams import pair_overlaps

HISTORY_SOURCES = ("persona", "last_turn", "last_bot_turn", "bot_turns", "context")


def history_fields(source: str) -> tuple[str, ...]:
    """The record field a ``history_source`` reads."""
    return ("persona",) if source == "persona" else ("context",)


def history_option(default: str) -> str:
    """What a persona metric compares the response with (:data:`HISTORY_SOURCES`)."""
    return option(default, choice_option(*HISTORY_SOURCES))


@dataclass
class History:
    history_source: str = history_option("persona")


class HistoryMetric(ItemScore):
    """A persona metric comparing the response with the texts of its ``history_source`` option: it is scored against,
    and needs, the record field those texts come from."""

    Options = History

    def scored_against(self) -> tuple[str, ...]:
        return history_fields(self.options.history_source)

    def needs_content(self) -> tuple[str, ...]:
        return history_fields(self.options.history_source)


def history_texts(record: Record, source: str) -> list[str]:
    """The texts a persona metric compares the response with. The context alternates speakers and
    ends with the partner's turn, so the bot's own turns are ``context[-2::-2]``."""
    if source == "persona":
        return list(record.persona)
    if source == "last_turn":
        return record.context[-1:]
    if source == "last_bot_turn":
        return record.context[-2:-1]
    if source == "bot_turns":
        return record.context[-2::-2][::-1]
    return list(record.context)


def set_f1(history_tokens: set, response_tokens: set) -> float:
    """Set-based F1 of MSP/IDL; 0 when either set is empty or nothing is shared."""
    common = len(history_tokens & response_tokens)
    if not history_tokens or not response_tokens or common == 0:
        return 0.0
    precision = common / len(response_tokens)
    recall = common / len(history_tokens)
    return 2 * precision * recall / (precision + recall)


def parlai_f1(g_tokens: Sequence[str], answers: Sequence[Sequence[str]], overlaps: Sequence[int]) -> float:
    """ParlAI ``F1Metric`` (facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:534-567) from the multiset
    overlap of the guess's tokens with each answer's (ParlAI: ``normalize_answer(text).split()``), maximum."""
    best = 0.0
    for a_tokens, num_same in zip(answers, overlaps):
        if num_same == 0:
            continue
        precision = 1.0 * num_same / len(g_tokens)
        recall = 1.0 * num_same / len(a_tokens)
        best = max(best, (2 * precision * recall) / (precision + recall))
    return best


def load_word_list(path: str) -> frozenset[str]:
    try:
        return frozenset(w.strip() for w in Path(path).read_text("utf-8").splitlines() if w.strip())
    except OSError as exc:
        raise ConfigError(f"cannot read word list {path}: {exc.strerror}") from None


#: built-in stop-word lists for ``stopwords=NAME``; a file of that name is given as ``./NAME``
BUILTIN_STOPWORDS = ("sklearn",)


@lru_cache(maxsize=None)
def builtin_stopwords(name: str) -> frozenset[str]:
    """``sklearn``: scikit-learn's ``ENGLISH_STOP_WORDS`` (318 words, from the Glasgow IR group's list)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def word_list_sha256(words: frozenset[str]) -> str:
    """sha256 of the sorted words, one a line (the same list gives the same hash whatever file it came from)."""
    import hashlib

    return hashlib.sha256("".join(f"{w}\n" for w in sorted(words)).encode()).hexdigest()


def load_idf(path: str) -> dict[str, float]:
    """A global idf table: JSON object ``{word: idf}`` or TSV lines ``word<TAB>idf``."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read idf table {path}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        return {str(k): float(v) for k, v in json.loads(text).items()}
    table = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            word, _, value = line.rpartition("\t")
            try:
                table[word] = float(value)
            except ValueError:
                raise ConfigError(f"{path}:{number}: expected 'word<TAB>idf'") from None
    return table


@register_metric("f1", "parlai", default=True)
class ParlaiF1(ItemScore):
    description = ("ParlAI F1: normalize_answer, multiset overlap, max over references, mean; tok=NAME splits the "
                   "normalised text with NAME (e.g. jieba for Chinese)")
    source = "facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:534-567"
    default_tokenizer = "parlai"
    keys = ["f1"]

    def item_stats(self, record: Record) -> float:
        return self.items_stats([record])[0]

    def items_stats(self, records: Sequence[Record]) -> list[float]:
        """ParlAI F1 of each record, the overlaps of all (response, reference) pairs counted at once."""
        guesses = [self.tok(r.response) for r in records]
        answers = [[self.tok(a) for a in r.references] for r in records]
        overlaps = iter(pair_overlaps([(g, a) for g, ans in zip(guesses, answers) for a in ans], 1))
        return [parlai_f1(g, ans, [next(overlaps)[0] for _ in ans]) for g, ans in zip(guesses, answers)]


class SetPersonaF1(HistoryMetric):
    """Set F1 between the response's words and the history's words."""

    keys = ["p-f1"]

    def history_tokens(self, texts: list[str]) -> set[str]:
        return {t for text in texts for t in self.tok(text)}

    def stopwords(self) -> frozenset[str]:
        return frozenset()

    def item_stats(self, record: Record) -> float:
        history = self.history_tokens(history_texts(record, self.options.history_source))
        response = set(self.tok(record.response))
        return set_f1(history - self.stopwords(), response - self.stopwords())


@dataclass
class MspPersonaF1Options:
    """stopwords: words left out, a file (one a line) or a built-in list (``sklearn``)."""

    history_source: str = history_option("persona")
    stopwords: str | None = option(None, text_option("FILE|" + "|".join(BUILTIN_STOPWORDS)))


@register_metric("p-f1", "msp", default=True)
class MspPersonaF1(SetPersonaF1):
    description = "set F1 between response words and the union of history words, minus stopwords"
    source = "bangbangbang12315/MSP@60bd1da:evaluate/evaluate.py:67-92"
    Options = MspPersonaF1Options

    def setup(self) -> None:
        path = self.options.stopwords
        self._stopwords: frozenset[str] = frozenset()
        self._stopwords_name = "none"  # also for an empty list
        if path in BUILTIN_STOPWORDS:
            self._stopwords = builtin_stopwords(path)
            self._stopwords_name = f"{path}-{len(self._stopwords)}-sha256:{word_list_sha256(self._stopwords)[:12]}"
        elif path and (words := load_word_list(path)):
            self._stopwords = words
            self._stopwords_name = f"sha256:{file_sha256(path)[:12]}"

    def stopwords(self) -> frozenset[str]:
        return self._stopwords

    def signature_options(self) -> dict:
        return {**super().signature_options(), "stopwords": self._stopwords_name}


@dataclass
class LastBotTurn:
    history_source: str = history_option("last_bot_turn")


@register_metric("p-f1", "idl")
class IdlPersonaF1(SetPersonaF1):
    description = "the same set F1 on word_tokenize tokens, no stopwords, history = last bot turn"
    source = "steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:78-93"
    default_tokenizer = "treebank"
    Options = LastBotTurn
    fixed_signature = {"stopwords": "none"}

    def history_tokens(self, texts: list[str]) -> set[str]:
        return set(self.tok(" ".join(texts)))


class PersonaCover(HistoryMetric):
    """Persona coverage: IDF-weighted overlap of the response with the history items."""

    display_factor = 1.0
    keys = ["p-cover"]


@register_metric("p-cover", "dhap", default=True)
class DhapPersonaCover(PersonaCover):
    description = "max over history items of the summed local idf ln(N/df) of response words found there"
    source = "zhengyima/DHAP@5ec160f:evaluate.py:256-302"

    def item_stats(self, record: Record) -> float:
        items = [self.tok(t) for t in history_texts(record, self.options.history_source)]
        unique_response = list(dict.fromkeys(self.tok(record.response)))
        n_items = len(items)
        df = Counter(w for item in items for w in set(item))
        scores = [sum(math.log(n_items / df[w]) for w in unique_response if w in set(item)) for item in items]
        return max(scores) if scores else 0.0


@dataclass
class MspPersonaCoverOptions:
    """idf: a global idf table (JSON or word<TAB>idf)."""

    history_source: str = history_option("persona")
    idf: str | None = option(None, text_option("FILE"))


@register_metric("p-cover", "msp")
class MspPersonaCover(PersonaCover):
    description = "the same with a global idf table (idf=FILE), divided by the response length"
    source = "bangbangbang12315/MSP@60bd1da:evaluate/evaluate.py:53-65,346-359"
    Options = MspPersonaCoverOptions

    def setup(self) -> None:
        if not self.options.idf:
            raise ConfigError("p-cover:msp needs a global idf table: p-cover:msp,idf=FILE "
                              "(MSP's en.word.pkl was never released)")
        self._idf = load_idf(self.options.idf)

    def signature_options(self) -> dict:
        return {**super().signature_options(), "idf": f"sha256:{file_sha256(self.options.idf)[:12]}"}

    def item_stats(self, record: Record) -> float:
        items = [self.tok(t) for t in history_texts(record, self.options.history_source)]
        response = self.tok(record.response)
        unique_response = list(dict.fromkeys(response))
        scores = [sum(self._idf[w] for w in unique_response if w in set(item) and w in self._idf) / len(response)
                  if response else 0.0 for item in items]
        return max(scores) if scores else 0.0


@register_metric("p-cover", "morpheus")
class MorpheusPersonaCover(PersonaCover):
    description = ("'P-Co': idf 1/(1+ln(1+count)) of persona tokens over all test personas; per persona sentence "
                   "the mean idf of its tokens found in the response; max; mean")
    source = "Toyhom/MORPHEUS@18c86fc:Matrics.py get_pc"
    display_factor = 100.0

    def item_stats(self, record: Record):
        """Token counts of all persona segments (for the idf) and, per persona sentence, the covered tokens (with
        repeats), so any subset of items re-aggregates exactly."""
        persona = " ".join(history_texts(record, self.options.history_source))
        response = set(self.tok(record.response))
        mark = "。" if "。" in persona else "."
        segments = persona.split(mark)
        counts = Counter(t for seg in segments for t in self.tok(seg))
        covers = [[t for t in self.tok(seg + mark) if t in response] for seg in segments if seg != ""]
        return {"segments": len(segments), "counts": dict(counts), "covers": covers}

    def item_values(self, stats) -> None:
        return None  # the idf depends on the whole corpus

    def aggregate(self, stats: Sequence) -> dict[str, float]:
        counts: Counter = Counter()
        n_segments = 0
        for st in stats:
            counts.update(st["counts"])
            n_segments += st["segments"]
        counts["。"] = counts["."] = n_segments
        idf = {t: 1 / (1 + math.log(1 + c)) for t, c in counts.items()}
        per_item = []
        for st in stats:
            best = []
            for cover in st["covers"]:
                if not cover:
                    best.append(0)
                    continue
                total = 0
                for t in cover:
                    total += idf.get(t, 1.0)  # MORPHEUS raises KeyError here; an unseen token has count 0
                best.append(total / len(cover))
            per_item.append(max(best) if best else 0)
        return {"p-cover": sum(per_item) / len(per_item) if per_item else 0.0}


@register_metric("p-cover", "idl_released")
class IdlReleasedPersonaCover(ItemScore):
    description = "IDL's released function: its idf is ln(1/1) = 0 for every word, so always 0"
    source = "steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:52-76"
    bug_compatible = True
    default_tokenizer = None
    display_factor = 1.0
    keys = ["p-cover"]

    def scored_against(self) -> tuple[str, ...]:
        return ("persona",)  # IDL's function reads the persona; its value is 0 whatever it reads

    def needs_content(self) -> tuple[str, ...]:
        return ("persona",)

    def item_stats(self, record: Record) -> float:
        return 0.0
