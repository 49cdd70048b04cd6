"""``match_stats_batch`` (n-grams counted with numpy sorts) gives exactly :func:`match_stats`' statistics: random
texts with many repeats, several references, empty texts, characters of strings, keys too large for int64, and the
chunks of ConvAI2 valid of every convention that counts its n-grams so (BLEU, rouge-score, ParlAI F1)."""

from __future__ import annotations

import random

import pytest

from pdg_eval.metrics import ngrams
from pdg_eval.metrics.base import build_metric
from pdg_eval.metrics.ngrams import match_stats, match_stats_batch
from pdg_eval.readers import open_records
from pdg_eval.records import record_from_dict
from pdg_eval.scoring import CHUNK_SIZE

from tests.conftest import shared_or_skip


@pytest.fixture(autouse=True)
def empty_caches():
    """Each side computes its statistics itself (the batch would otherwise return the loop's cached lists)."""
    ngrams._STATS_CACHE.clear()
    ngrams._COUNTS_CACHE.clear()
    yield
    ngrams._STATS_CACHE.clear()
    ngrams._COUNTS_CACHE.clear()


def one_by_one(pairs, max_n):
    out = [match_stats(hyp, refs, max_n) for hyp, refs in pairs]
    ngrams._STATS_CACHE.clear()
    ngrams._COUNTS_CACHE.clear()
    return out


def random_text(rng: random.Random, alphabet: str, longest: int) -> tuple[str, ...]:
    return tuple(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))


@pytest.mark.parametrize("max_n", [1, 2, 4])
@pytest.mark.parametrize("most_refs", [1, 5])
def test_random_texts_with_repeats(max_n, most_refs):
    rng = random.Random(max_n * 10 + most_refs)
    pairs = [(random_text(rng, "abcd", 12), tuple(random_text(rng, "abcde", 12)
                                                  for _ in range(rng.randint(1, most_refs))))
             for _ in range(400)]
    expected = one_by_one(pairs, max_n)
    assert match_stats_batch(pairs, max_n) == expected
    assert any(stats[2 + max_n - 1] for stats in expected)  # the highest order matches somewhere
    assert any(len(hyp) == 0 for hyp, _ in pairs) and any(len(r) == 0 for _, refs in pairs for r in refs)


def test_no_reference_ngram_of_an_order():
    pairs = [(("a", "b", "c"), (("a",), ("b", "c"))), (("a", "a"), (("a",), ()))]  # no reference trigram at all
    assert match_stats_batch(pairs, 4) == one_by_one(pairs, 4)
    pairs = [(("a", "b", "c"), ((),)), (("a",), (("a",),))]
    assert match_stats_batch(pairs, 4) == one_by_one(pairs, 4)


def test_strings_are_their_characters():
    rng = random.Random(3)
    pairs = [("".join(random_text(rng, "aé中\ud800 ", 30)), ("".join(random_text(rng, "aé中\ud800 b", 30)),))
             for _ in range(200)]  # a lone surrogate too
    assert match_stats_batch(pairs, 4) == one_by_one(pairs, 4)
    assert match_stats_batch(pairs, 1) == one_by_one(pairs, 1)


def test_keys_beyond_int64_split_the_batch():
    vocabulary = [f"w{i}" for i in range(60_000)]  # 50,000**4 > 2**62: halves, then one pair falls back to the loop
    rng = random.Random(0)
    pairs = [(tuple(vocabulary[i:i + 50]) + tuple(rng.sample(vocabulary, 50_000)), (tuple(vocabulary[i:i + 60]),))
             for i in range(3)]
    assert match_stats_batch(pairs, 4) == one_by_one(pairs, 4)


def test_a_pair_without_references_fails_as_the_loop_does():
    with pytest.raises(ValueError):
        match_stats(("a",), (), 4)
    with pytest.raises(ValueError):
        match_stats_batch([(("a",), ()), (("b",), (("b",),)), (("c",), (("c",),))], 4)


def test_cached_statistics_are_reused():
    pairs = [(("a", "b"), (("a", "b"),)), (("a",), (("b",),))]
    first = match_stats_batch(pairs, 4)
    assert all(a is b for a, b in zip(match_stats_batch(pairs, 4), first))


BATCHED_SPECS = ["bleu:nltk_sentence_avg", "bleu:sacrebleu", "bleu:parlai", "bleu:clv_released", "bleu:idl_released",
                 "bleu:pal_swapped", "bleu:multibleu", "bleu:nltk_sentence_avg,tok=treebank", "rouge:rouge_score",
                 "rouge:rouge_score,tok=rouge-score-nostem", "f1:parlai"]


@pytest.mark.parametrize("spec", ["rouge:rouge_score", "f1:parlai"])
def test_chunks_with_several_references(spec):
    rng = random.Random(5)
    records = [record_from_dict({"id": str(i), "response": " ".join(random_text(rng, "abcd", 8)),
                                 "reference": [" ".join(random_text(rng, "abce", 8)) or "a"
                                               for _ in range(rng.randint(1, 4))]}) for i in range(300)]
    metric = build_metric(spec)
    expected = [metric.item_stats(r) for r in records]
    ngrams._STATS_CACHE.clear()
    assert metric.items_stats(records) == expected
    assert any(len(r.references) > 1 and stats != metric.item_stats(record_from_dict(
        {"id": "x", "response": r.response, "reference": r.references[0]})) for r, stats in zip(records, expected))


@pytest.mark.slow
@pytest.mark.parametrize("spec", BATCHED_SPECS)
def test_every_batched_convention_on_convai2_chunks(convai2_valid, spec):
    hyp = shared_or_skip("data", "outputs", "sc_gpt", "hyp-normal_ord")
    records = list(open_records(str(hyp), "lines", dataset=str(convai2_valid)))
    metric = build_metric(spec)
    expected = [metric.item_stats(r) for r in records]
    ngrams._STATS_CACHE.clear()
    ngrams._COUNTS_CACHE.clear()
    batched = [stats for start in range(0, len(records), CHUNK_SIZE)
               for stats in metric.items_stats(records[start:start + CHUNK_SIZE])]
    assert batched == expected


def test_statistics_of_swapped_roles_from_the_cache():
    rng = random.Random(7)
    pairs = [(random_text(rng, "abc", 10), (random_text(rng, "abcd", 10),)) for _ in range(300)]
    swapped = [(refs[0], (hyp,)) for hyp, refs in pairs]
    expected = one_by_one(swapped, 4)
    match_stats_batch(pairs, 4)  # now cached the other way round
    assert match_stats_batch(swapped, 4) == expected
    assert len(ngrams._STATS_CACHE) == len(set(pairs))  # derived, not counted again
