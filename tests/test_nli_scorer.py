"""The NLI scorer recipe end to end on a tiny random backbone and a small slice of the data
(the real scorer is trained by `pdg-eval scorers train nli`, not in every test run)."""

from __future__ import annotations

import json

from pdg_eval.cli.main import main
from pdg_eval.metrics.base import build_metric
from pdg_eval.scorers.nli import NliExample, in_order, read_dnli_pairs
from tests.conftest import shared_or_skip
from tests.test_nli_metric import make_tiny_nli


def test_dnli_reader_counts():
    train = read_dnli_pairs(shared_or_skip("data", "consistency", "dnli_style_pairs", "nli-train.txt"))
    valid = read_dnli_pairs(shared_or_skip("data", "consistency", "dnli_style_pairs", "nli-valid.txt"))
    assert len(train) == 8307 and len(valid) == 3158
    assert [sum(e.label == k for e in valid) for k in (2, 1, 0)] == [1078, 1023, 1057]
    assert valid[0].premise == "i like playing basketball ." and valid[0].hypothesis.startswith("i prefer basketball")


def test_train_and_eval_cli_on_a_tiny_backbone(tmp_path, capsys):
    lines = shared_or_skip("data", "consistency", "dnli_style_pairs", "nli-train.txt").read_text().splitlines()
    small_train, small_valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    small_train.write_text("\n".join(lines[:64]) + "\n")
    small_valid.write_text("\n".join(lines[64:96]) + "\n")
    backbone = make_tiny_nli(tmp_path / "backbone", seed=0)
    out = tmp_path / "scorer"
    assert main(["scorers", "train", "nli", "--out", str(out), "--backbone", backbone, "--train", str(small_train),
                 "--valid", str(small_valid), "--epochs", "1", "--batch-size", "16", "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [d["n"] for d in manifest["data"]["train"]] == [64] and len(manifest["weights_sha256"]) == 64
    assert manifest["premise_order"] == "persona_first"  # read_dnli_pairs: premise = the persona sentence
    matrix = manifest["heldout"]["confusion_matrix"]["rows_gold_cols_predicted"]
    assert sum(map(sum, matrix)) == 32
    capsys.readouterr()
    assert main(["scorers", "eval", "nli", "--model", str(out), "--data", str(small_valid)]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == manifest["heldout"]["accuracy"]


def test_premise_orders_of_training_pairs():
    pairs = [NliExample("i have a dog .", "my dog is called rex", 2)]
    assert in_order(pairs, "persona_first") == pairs
    assert in_order(pairs, "response_first") == [NliExample("my dog is called rex", "i have a dog .", 2)]
    assert in_order(pairs, "both") == [*pairs, *in_order(pairs, "response_first")]


def test_train_both_orders_then_any_c_score_variant(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PDG_EVAL_CACHE", "off")
    lines = shared_or_skip("data", "consistency", "dnli_style_pairs", "nli-train.txt").read_text().splitlines()
    small_train, small_valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    small_train.write_text("\n".join(lines[:32]) + "\n")
    small_valid.write_text("\n".join(lines[32:48]) + "\n")
    out = tmp_path / "scorer"
    assert main(["scorers", "train", "nli", "--out", str(out), "--backbone", make_tiny_nli(tmp_path / "backbone", 0),
                 "--train", str(small_train), "--valid", str(small_valid), "--epochs", "1", "--batch-size", "16",
                 "--premise-order", "both", "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["premise_order"] == "both" and manifest["data"]["valid"]["n"] == 16
    assert manifest["heldout"]["n"] == 32  # every held-out pair in both orders
    capsys.readouterr()
    assert main(["scorers", "eval", "nli", "--model", str(out), "--data", str(small_valid)]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 32
    for variant in ("paml_sum", "chanliang"):
        assert "premise_order:both" in str(build_metric(f"c-score:{variant},model={out}").signature())
