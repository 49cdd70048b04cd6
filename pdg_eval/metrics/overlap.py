"""Word-overlap metrics: ParlAI F1, persona F1 (P-F1) and persona coverage (P-Cover / P-Co).

"History" for the persona metrics is explicit (``history_source``):
``persona`` sentences, the ``last_turn`` of the context, the bot's ``last_bot_turn`` (IDL's
``history[1::2][-1:]``), all ``bot_turns``, or the whole ``context``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError
from ..records import Record
from .base import Metric, VariantInfo, choice_option, mean, register_metric, text_option

HISTORY_SOURCES = ("persona", "last_turn", "last_bot_turn", "bot_turns", "context")


def history_fields(source: str) -> tuple[str, ...]:
    """The record field a ``history_source`` reads."""
    return ("persona",) if source == "persona" else ("context",)


class HistoryMetric(Metric):
    """A persona metric comparing the response with the texts of its ``history_source`` option: it is scored against,
    and needs, the record field those texts come from."""

    def scored_against(self) -> tuple[str, ...]:
        return history_fields(self.options["history_source"])

    def needs_content(self) -> tuple[str, ...]:
        return history_fields(self.options["history_source"])


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


def parlai_f1(g_tokens: Sequence[str], answers: Sequence[Sequence[str]]) -> float:
    """ParlAI ``F1Metric`` (facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:534-567): multiset
    overlap of the guess's tokens with each answer's (ParlAI: ``normalize_answer(text).split()``), maximum."""
    best = 0.0
    for a_tokens in answers:
        common = Counter(g_tokens) & Counter(a_tokens)
        num_same = sum(common.values())
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


@register_metric
class F1(Metric):
    name = "f1"
    default_variant = "parlai"
    variants = {"parlai": VariantInfo("ParlAI F1: normalize_answer, multiset overlap, max over references, mean; "
                                      "tok=NAME splits the normalised text with NAME (e.g. jieba for Chinese)",
                                      tokenizer="parlai",
                                      source="facebookresearch/ParlAI@a29567f:parlai/core/metrics.py:534-567")}
    keys = ["f1"]

    def item_stats(self, record: Record) -> float:
        return parlai_f1(self.tok(record.response), [self.tok(r) for r in record.references])

    def item_values(self, stats: float) -> dict[str, float]:
        return {"f1": stats}

    def aggregate(self, stats: Sequence[float]) -> dict[str, float]:
        return {"f1": mean(stats)}


@register_metric
class PersonaF1(HistoryMetric):
    name = "p-f1"
    default_variant = "msp"
    #: history_source: what the response is compared with; stopwords: words left out, a file (one a line) or a
    #: built-in list (``sklearn``)
    option_types = {"history_source": choice_option(*HISTORY_SOURCES),
                    "stopwords": text_option("FILE|" + "|".join(BUILTIN_STOPWORDS))}
    variants = {
        "msp": VariantInfo("set F1 between response words and the union of history words, minus stopwords",
                           source="bangbangbang12315/MSP@60bd1da:evaluate/evaluate.py:67-92",
                           options={"history_source": "persona", "stopwords": None}),
        "idl": VariantInfo("the same set F1 on word_tokenize tokens, no stopwords, history = last bot turn",
                           tokenizer="treebank", source="steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:78-93",
                           options={"history_source": "last_bot_turn"}),
    }
    keys = ["p-f1"]

    def setup(self) -> None:
        path = self.options.get("stopwords")
        self._stopwords = frozenset()
        if path in BUILTIN_STOPWORDS:
            self._stopwords = builtin_stopwords(path)
            words = self._stopwords
            self._stopwords_name = f"{path}-{len(words)}-sha256:{word_list_sha256(words)[:12]}"
        elif path:
            from ..tokenize import file_sha256

            self._stopwords = load_word_list(path)
            self._stopwords_name = f"sha256:{file_sha256(path)[:12]}"

    def signature_options(self) -> dict:
        opts = {"history_source": self.options["history_source"]}
        opts["stopwords"] = self._stopwords_name if self._stopwords else "none"
        return opts

    def item_stats(self, record: Record) -> float:
        texts = history_texts(record, self.options["history_source"])
        if self.variant == "idl":
            history = set(self.tok(" ".join(texts)))
        else:
            history = {t for text in texts for t in self.tok(text)}
        response = set(self.tok(record.response))
        return set_f1(history - self._stopwords, response - self._stopwords)

    def item_values(self, stats: float) -> dict[str, float]:
        return {"p-f1": stats}

    def aggregate(self, stats: Sequence[float]) -> dict[str, float]:
        return {"p-f1": mean(stats)}


@register_metric
class PersonaCover(HistoryMetric):
    name = "p-cover"
    default_variant = "dhap"
    display_factor = 1.0
    #: history_source: what the response is compared with; idf: a global idf table (JSON or word<TAB>idf)
    option_types = {"history_source": choice_option(*HISTORY_SOURCES), "idf": text_option("FILE")}
    variants = {
        "dhap": VariantInfo("max over history items of the summed local idf ln(N/df) of response words found there",
                            source="zhengyima/DHAP@5ec160f:evaluate.py:256-302", options={"history_source": "persona"}),
        "msp": VariantInfo("the same with a global idf table (idf=FILE), divided by the response length",
                           source="bangbangbang12315/MSP@60bd1da:evaluate/evaluate.py:53-65,346-359",
                           options={"history_source": "persona", "idf": None}),
        "morpheus": VariantInfo("'P-Co': idf 1/(1+ln(1+count)) of persona tokens over all test personas; per persona "
                                "sentence the mean idf of its tokens found in the response; max; mean",
                                source="Toyhom/MORPHEUS@18c86fc:Matrics.py get_pc",
                                options={"history_source": "persona"}),
        "idl_released": VariantInfo("IDL's released function: its idf is ln(1/1) = 0 for every word, so always 0",
                                    tokenizer=None, bug_compatible=True,
                                    source="steven-ccq/In-Dialogue-Learning@41b5fac:src/evaluation/eval_baseline.py:52-76"),
    }
    keys = ["p-cover"]

    def setup(self) -> None:
        if self.variant == "idl_released":  # IDL's function reads the persona; its value is 0 whatever it reads
            self.options["history_source"] = "persona"
        self._idf: dict[str, float] = {}
        if self.variant == "msp":
            if not self.options["idf"]:
                raise ConfigError("p-cover:msp needs a global idf table: p-cover:msp,idf=FILE "
                                  "(MSP's en.word.pkl was never released)")
            self._idf = load_idf(self.options["idf"])
        if self.variant == "morpheus":
            self.display_factor = 100.0

    def signature_options(self) -> dict:
        if self.variant == "idl_released":
            return {}
        opts = {"history_source": self.options["history_source"]}
        if self.variant == "msp":
            from ..tokenize import file_sha256

            opts["idf"] = f"sha256:{file_sha256(self.options['idf'])[:12]}"
        return opts

    def item_stats(self, record: Record):
        if self.variant == "idl_released":
            return 0.0
        texts = history_texts(record, self.options["history_source"])
        response = self.tok(record.response)
        if self.variant == "morpheus":
            return self._morpheus_stats(texts, response)
        items = [self.tok(t) for t in texts]
        unique_response = list(dict.fromkeys(response))
        if self.variant == "dhap":
            n_items = len(items)
            df = Counter(w for item in items for w in set(item))
            scores = [sum(math.log(n_items / df[w]) for w in unique_response if w in set(item)) for item in items]
            return max(scores) if scores else 0.0
        scores = [sum(self._idf[w] for w in unique_response if w in set(item) and w in self._idf) / len(response)
                  if response else 0.0 for item in items]
        return max(scores) if scores else 0.0

    def _morpheus_stats(self, texts: list[str], response: tuple[str, ...]):
        """Per-item: token counts of all persona segments (for the idf) and, per persona sentence,
        the covered tokens (with repeats), so any subset of items re-aggregates exactly."""
        persona = " ".join(texts)
        mark = "。" if "。" in persona else "."
        segments = persona.split(mark)
        counts = Counter(t for seg in segments for t in self.tok(seg))
        response_set = set(response)
        covers = [[t for t in self.tok(seg + mark) if t in response_set] for seg in segments if seg != ""]
        return {"segments": len(segments), "counts": dict(counts), "covers": covers}

    def item_values(self, stats) -> dict[str, float] | None:
        if self.variant == "morpheus":
            return None
        return {"p-cover": stats}

    def aggregate(self, stats: Sequence) -> dict[str, float]:
        if self.variant != "morpheus":
            return {"p-cover": mean(stats)}
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
