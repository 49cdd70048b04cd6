"""PAA end to end on tiny configs: a model overfits a few examples (GPT-2 and LLaMA decoders), every fusion variant
trains, and the Hits@1 head (a second training stage) ranks the gold candidate first and round-trips through
``pdg-eval score``."""

from __future__ import annotations

import json

import pytest

from pdg_eval_methods.common.config import DecodingConfig, load_run_config
from pdg_eval_methods.common.data import load_convai2, take_dialogues
from pdg_eval_methods.common.method import get_method
from pdg_eval_methods.common.training import train
from pdg_eval_methods.paa.model import FUSIONS
from pdg_eval.cli.main import main

TINY = ["training.batch_size=4", "training.logging_steps=5", "training.max_length=96", "decoding.max_new_tokens=24",
        "model.encoder_layers=1", "model.encoder_heads=2", "model.dropout=0.0",
        "data.dev_fraction=0.0", "training.eval_strategy=no", "training.select_best=false"]


@pytest.fixture(scope="module")
def few(convai2_valid):
    return take_dialogues(load_convai2(convai2_valid), 1)[:3]


@pytest.mark.parametrize("backbone", ["random:tiny-gpt2", "random:tiny-llama"])
def test_tiny_paa_overfits_a_few_examples(backbone, few, tmp_path):
    config = load_run_config(None, "paa", TINY + [f"backbone={backbone}", "training.learning_rate=5e-3",
                                                  "training.max_steps=60", "training.lr_scheduler=constant"])
    method = get_method("paa")(config)
    method.build()
    summary = train(method, few, tmp_path)
    assert summary.last_loss < 0.1 * summary.first_loss, summary.losses
    generated = method.generate(few, DecodingConfig(max_new_tokens=24, batch_size=3))
    assert sum(g == e.response for g, e in zip(generated, few)) >= 2, (generated, [e.response for e in few])


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_variant_trains(fusion, few, tmp_path):
    config = load_run_config(None, "paa", TINY + ["backbone=random:tiny-gpt2", f"model.fusion={fusion}",
                                                  "training.learning_rate=3e-3", "training.max_steps=15"])
    method = get_method("paa")(config)
    method.build()
    summary = train(method, few, tmp_path)
    assert summary.last_loss < summary.first_loss - 0.5, summary.losses


def test_tau_numerator_is_a_real_option(few):
    import torch

    outputs = {}
    for numerator in ("context", "persona"):
        config = load_run_config(None, "paa", TINY + ["backbone=random:tiny-gpt2", f"model.tau_numerator={numerator}"])
        method = get_method("paa")(config)
        method.build()
        method.model.eval()
        batch = method.collate([method.features(e)[0] for e in few])
        with torch.no_grad():
            outputs[numerator] = method.model(**batch)["logits"]
        state = method.model.encode(batch["persona_ids"], batch["persona_mask"], batch["context_ids"],
                                    batch["context_mask"])
        persona = batch["persona_mask"].sum(1).float()
        context = batch["context_mask"].sum(1).float()
        expected = (context if numerator == "context" else persona) / (persona + context)
        assert torch.allclose(state.tau.flatten(), expected)
    assert not torch.allclose(outputs["context"], outputs["persona"])  # same weights (seed), different masks


def test_hits_head_second_stage_ranks_the_gold_first(convai2_valid, tmp_path):
    settings = TINY + ["backbone=random:tiny-gpt2", f"data.train={convai2_valid}", "data.train_dialogues=1",
                       f"data.eval={convai2_valid}", "data.eval_dialogues=1", "training.learning_rate=3e-3"]
    args = [f"--set={s}" for s in settings]
    assert main(["run", "paa", "train", "--out", str(tmp_path / "lm"), "-q", "--set=training.max_steps=10", *args]) == 0
    stage2 = tmp_path / "hits"
    assert main(["run", "paa", "train", "--out", str(stage2), "-q", "--init-from", str(tmp_path / "lm"),
                 "--set=model.objective=candidates", "--set=model.distractors=3", "--set=training.max_steps=40",
                 *args]) == 0
    record = json.loads((stage2 / "run.json").read_text())
    assert record["init_from"]["folder"] == str(tmp_path / "lm") and record["summary"]["features"] == 8 * 4
    preds = tmp_path / "preds.jsonl"
    assert main(["run", "paa", "generate", "--checkpoint", str(stage2), "--out", str(preds), "-q",
                 "--score-candidates", "--with-nll", "--set=model.objective=candidates", *args]) == 0
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert all(len(r["candidate_scores"]) == 20 and r["nll"] for r in rows)
    hits = sum(max(range(20), key=lambda k: r["candidate_scores"][k]) == r["gold_index"] for r in rows)
    assert hits >= 6, hits  # trained on these turns: the gold should mostly win
    out = tmp_path / "scores.json"
    assert main(["score", str(preds), "--preset", "paa", "--json", str(out)]) == 0
    metrics = {m["name"]: m for m in json.loads(out.read_text())["metrics"]}
    assert metrics["hits@1"]["values"]["hits@1"] == pytest.approx(hits / len(rows)) and "ppl" in metrics


def test_data_efficiency_runner_writes_nested_runs(convai2_valid, tmp_path):
    from pdg_eval_methods.paa.data_efficiency import run

    overrides = TINY + ["backbone=random:tiny-gpt2", f"data.train={convai2_valid}", "data.train_dialogues=4",
                        f"data.eval={convai2_valid}", "data.eval_dialogues=1", "training.max_steps=2"]
    summary = run("paa", None, overrides, [1.0, 0.5], tmp_path, progress=False)
    rows = summary["rows"]
    assert [r["fraction"] for r in rows] == [0.5, 1.0] and [r["dialogues"] for r in rows] == [2, 4]
    assert all(1.0 < r["validation_ppl"] < 1e6 for r in rows)
    half = json.loads((tmp_path / "fraction-0.5" / "run.json").read_text())["data"]["train"]
    full = json.loads((tmp_path / "fraction-1" / "run.json").read_text())["data"]["train"]
    assert half["dialogues"] == 2 and full["dialogues"] == 4 and half["spec"]["seed"] == 13
    for name in ("summary.json", "summary.md", "ppl_vs_fraction.png"):
        assert (tmp_path / name).is_file()
    assert [r["std_ppl"] for r in summary["by_fraction"]] == [None, None]


def test_data_efficiency_seeds_draw_their_own_subsets_and_are_summarised(convai2_valid, tmp_path):
    import statistics

    from pdg_eval_methods.paa.data_efficiency import PAPER_FRACTIONS, main, run

    overrides = TINY + ["backbone=random:tiny-gpt2", f"data.train={convai2_valid}", "data.train_dialogues=4",
                        f"data.eval={convai2_valid}", "data.eval_dialogues=1", "training.max_steps=1"]
    summary = run("paa", None, overrides, [0.5], tmp_path, progress=False, seeds=[3, 4])
    assert [(r["seed"], r["fraction"]) for r in summary["rows"]] == [(3, 0.5), (4, 0.5)] and summary["seeds"] == [3, 4]
    runs = [json.loads((tmp_path / f"seed-{s}" / "fraction-0.5" / "run.json").read_text()) for s in (3, 4)]
    assert [r["seed"] for r in runs] == [3, 4] and [r["data"]["train"]["spec"]["seed"] for r in runs] == [3, 4]
    values = [r["validation_ppl"] for r in summary["rows"]]
    (row,) = summary["by_fraction"]
    assert row["mean_ppl"] == pytest.approx(statistics.fmean(values))
    assert row["std_ppl"] == pytest.approx(statistics.stdev(values))
    assert "± " not in (tmp_path / "summary.md").read_text() and f"{row['mean_ppl']:.2f}" in (tmp_path / "summary.md").read_text()
    assert PAPER_FRACTIONS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # Figure 3's grid is the default
    assert main(["--out", str(tmp_path / "bad"), "--seeds", "1", "1", "--set", "backbone=random:tiny-gpt2"]) == 2
    assert not (tmp_path / "bad").exists()


def test_paper_hyperparameters_are_the_defaults(tmp_path):
    from pdg_eval_methods.common.method import method_config

    config = method_config("paa")
    assert (config.training.learning_rate, config.training.batch_size, config.training.max_grad_norm) == (8e-6, 32, 0.1)
    assert config.training.epochs == 30 and config.training.weight_decay == 0.0 and config.decoding.strategy == "greedy"
    assert config.decoding.max_new_tokens == 64 and config.model == {}
    # the paper's checkpoint selection: the epoch with the best perplexity on held-out dialogues
    assert (config.training.eval_strategy, config.training.select_best, config.data.dev_fraction) == ("epoch", True, 0.05)
    assert method_config("attention_routing").training.eval_strategy == "no"
    path = tmp_path / "cpu.yaml"
    path.write_text("training:\n  learning_rate: 1.0e-4\n")
    scaled = method_config("paa", path, ["training.batch_size=8"])
    assert (scaled.training.learning_rate, scaled.training.batch_size, scaled.training.max_grad_norm) == (1e-4, 8, 0.1)
    assert method_config("attention_routing").training.learning_rate == 8e-6
    assert method_config("causal_lm_ft").training.learning_rate == 5e-5  # the harness default
