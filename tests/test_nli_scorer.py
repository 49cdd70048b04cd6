"""The NLI scorer recipe end to end on a tiny random backbone and a small slice of the data
(the real scorer is trained by `pdg-eval scorers train nli`, not in every test run)."""

from __future__ import annotations

import json

import pytest

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
    matrix = manifest["heldout"]["valid.txt"]["confusion_matrix"]["rows_gold_cols_predicted"]
    assert sum(map(sum, matrix)) == 32
    capsys.readouterr()
    assert main(["scorers", "eval", "nli", "--model", str(out), "--data", str(small_valid)]) == 0
    report = json.loads(capsys.readouterr().out)["sets"][str(small_valid)]
    assert report["accuracy"] == manifest["heldout"]["valid.txt"]["accuracy"]


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
    assert manifest["premise_order"] == "both"
    assert manifest["heldout"]["valid.txt"]["n"] == 32  # every held-out pair in both orders
    capsys.readouterr()
    assert main(["scorers", "eval", "nli", "--model", str(out), "--data", str(small_valid)]) == 0
    assert json.loads(capsys.readouterr().out)["sets"][str(small_valid)]["n"] == 32
    for variant in ("paml_sum", "chanliang"):
        assert "premise_order:both" in str(build_metric(f"c-score:{variant},model={out}").signature())


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    import pytest
    import torch

    from pdg_eval.errors import ConfigError
    from pdg_eval.scorers.training import fine_tune, prepare_checkpoint

    generator = torch.Generator().manual_seed(0)
    examples = [(torch.randn(4, generator=generator), int(k % 3)) for k in range(40)]

    def run(checkpoint=None, crash_at=None, epochs=3):
        torch.manual_seed(1)
        model = torch.nn.Linear(4, 3)
        calls = []

        def batch_loss(batch, device):
            calls.append(1)
            if crash_at is not None and len(calls) == crash_at:
                raise KeyboardInterrupt
            x = torch.stack([e[0] for e in batch]).to(device)
            return torch.nn.functional.cross_entropy(model(x), torch.tensor([e[1] for e in batch], device=device))

        seconds = fine_tune(model, examples, batch_loss, epochs=epochs, batch_size=8, lr=0.1, weight_decay=0.0,
                            warmup_ratio=0.2, seed=5, desc="t", progress=False, checkpoint=checkpoint,
                            checkpoint_every=2, group_of=lambda e: e[1])
        run.seconds = seconds
        return model.weight.detach().clone(), len(calls)

    straight, steps = run()
    assert steps == 15 and run.seconds > 0
    checkpoint = prepare_checkpoint(tmp_path / "out", resume=False)
    with pytest.raises(KeyboardInterrupt):
        run(checkpoint, crash_at=8)  # dies in step 8 of 15: the checkpoint after step 6 survives
    with pytest.raises(ConfigError, match="pass --resume"):
        prepare_checkpoint(tmp_path / "out", resume=False)
    with pytest.raises(ConfigError, match="a run of 15 steps, this one has 20"):  # another run's options
        run(prepare_checkpoint(tmp_path / "out", resume=True), epochs=4)
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["done"] == 6 and saved["seconds"] > 0
    resumed, remaining = run(prepare_checkpoint(tmp_path / "out", resume=True))
    assert remaining == 15 - 6 and torch.equal(resumed, straight)
    assert run.seconds > saved["seconds"]  # the training time of both segments
    with pytest.raises(KeyboardInterrupt):  # a checkpoint written before training time was recorded
        run(prepare_checkpoint(tmp_path / "old", resume=False), crash_at=8)
    old = torch.load(tmp_path / "old" / "training-checkpoint.pt", weights_only=True)
    del old["seconds"]
    torch.save(old, tmp_path / "old" / "training-checkpoint.pt")
    run(prepare_checkpoint(tmp_path / "old", resume=True))
    assert run.seconds is None  # unknown, not the last segment's time
    with pytest.raises(ConfigError, match="nothing to resume"):
        prepare_checkpoint(tmp_path / "other", resume=True)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not _cuda_available(), reason="needs a CUDA GPU"))])
def test_fine_tune_trains_on_its_device_and_returns_the_model_to_the_cpu(device):
    import torch

    from pdg_eval.scorers.training import fine_tune

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    examples = [(torch.randn(4), k % 3) for k in range(12)]
    seen = []

    def batch_loss(batch, on):
        seen.append((on, model.weight.device.type, torch.is_autocast_enabled(on.type)))
        x = torch.stack([e[0] for e in batch]).to(on)
        return torch.nn.functional.cross_entropy(model(x).float(), torch.tensor([e[1] for e in batch], device=on))

    fine_tune(model, examples, batch_loss, epochs=1, batch_size=4, lr=0.1, weight_decay=0.0, warmup_ratio=0.0,
              seed=0, desc="t", progress=False, device=torch.device(device))
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    assert seen == [(torch.device(device), device, bf16)] * 3
    assert model.weight.device.type == "cpu" and not model.training


def test_a_device_torch_does_not_have_is_refused(tmp_path, capsys):
    import torch

    from pdg_eval.cli.main import main
    from pdg_eval.errors import ConfigError
    from pdg_eval.models.runtime import select_device

    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="'gpu': not a torch device"):
        select_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="sees no CUDA GPU here"):
            select_device("cuda:0")
    assert main(["scorers", "train", "nli", "--out", str(tmp_path / "x"), "--device", "gpu", "--train",
                 str(tmp_path / "none.txt"), "--valid", str(tmp_path / "none.txt")]) == 2
    assert "'gpu': not a torch device" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_training_continues_from_a_trained_scorer(tmp_path, capsys):
    """--init loads a scorer's adapter and head as the starting point: with a vanishing learning rate the continued
    scorer predicts what its start does; a start of another LoRA rank (or a cohcon run) is refused with the reason."""
    lines = shared_or_skip("data", "consistency", "dnli_style_pairs", "nli-train.txt").read_text().splitlines()
    small_train, small_valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    small_train.write_text("\n".join(lines[:64]) + "\n")
    small_valid.write_text("\n".join(lines[64:128]) + "\n")
    backbone = make_tiny_nli(tmp_path / "backbone", seed=0)
    common = ["--backbone", backbone, "--train", str(small_train), "--valid", str(small_valid), "--batch-size", "16",
              "-q"]
    start, fresh, continued = tmp_path / "start", tmp_path / "fresh", tmp_path / "continued"
    assert main(["scorers", "train", "nli", "--out", str(start), "--epochs", "3", "--lr", "0.01", *common]) == 0
    assert main(["scorers", "train", "nli", "--out", str(fresh), "--epochs", "1", "--lr", "1e-12", *common]) == 0
    assert main(["scorers", "train", "nli", "--out", str(continued), "--epochs", "1", "--lr", "1e-12",
                 "--init", str(start), *common]) == 0
    capsys.readouterr()
    report = {p.name: json.loads((p / "manifest.json").read_text()) for p in (start, fresh, continued)}
    matrix = {name: m["heldout"]["valid.txt"]["confusion_matrix"] for name, m in report.items()}
    assert matrix["continued"] == matrix["start"] != matrix["fresh"]
    assert report["continued"]["init"] == {"scorer": str(start), "weights_sha256": report["start"]["weights_sha256"],
                                           "backbone_sha256": report["start"]["backbone_sha256"]}
    assert main(["scorers", "train", "nli", "--out", str(tmp_path / "other"), "--epochs", "1", "--lora-rank", "4",
                 "--init", str(start), *common]) == 2
    assert "cannot continue from it: its LoRA rank is 8, not 4" in capsys.readouterr().err
    assert main(["scorers", "train", "cohcon", "--out", str(tmp_path / "c"), "--init", str(start), "-q"]) == 2
    assert "--init is an option of `scorers train nli`" in capsys.readouterr().err


def test_an_ensemble_averages_its_members(tmp_path, capsys, monkeypatch):
    """`scorers ensemble` writes a manifest-only scorer: its probabilities are the mean of the members' (in canonical
    label order), its accuracy on the held-out set is that of the mean, the C-score signature names its own hash, and
    members of different premise orders are refused."""
    import shutil

    import pytest

    from pdg_eval.models.nli_labels import canonical_label_map
    from pdg_eval.models.runtime import EnsemblePairClassifier, PairClassifier
    from pdg_eval.scorers.training import confusion_report

    monkeypatch.setenv("PDG_EVAL_CACHE", "off")
    lines = shared_or_skip("data", "consistency", "dnli_style_pairs", "nli-train.txt").read_text().splitlines()
    small_train, small_valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    small_train.write_text("\n".join(lines[:48]) + "\n")
    small_valid.write_text("\n".join(lines[48:96]) + "\n")
    members = []
    for seed in (0, 1):
        out = tmp_path / f"m{seed}"
        assert main(["scorers", "train", "nli", "--out", str(out), "--backbone",
                     make_tiny_nli(tmp_path / f"b{seed}", seed), "--train", str(small_train), "--valid",
                     str(small_valid), "--epochs", "1", "--batch-size", "16", "-q"]) == 0
        members.append(str(out))
    shutil.copytree(members[1], tmp_path / "m2")  # the same scorer, as if trained response first
    other = json.loads((tmp_path / "m2" / "manifest.json").read_text())
    (tmp_path / "m2" / "manifest.json").write_text(json.dumps({**other, "premise_order": "response_first"}))
    members.append(str(tmp_path / "m2"))
    ensemble = tmp_path / "ensemble"
    assert main(["scorers", "ensemble", "--member", members[0], "--member", members[1], "--out", str(ensemble),
                 "--valid", str(small_valid)]) == 0
    capsys.readouterr()
    manifest = json.loads((ensemble / "manifest.json").read_text())
    assert sorted(p.name for p in ensemble.iterdir()) == ["manifest.json"]
    pairs = [(e.premise, e.hypothesis) for e in read_dnli_pairs(small_valid)]
    mean = [[0.0, 0.0, 0.0] for _ in pairs]
    for member in members[:2]:
        classifier = PairClassifier(member)
        to_canonical = canonical_label_map(classifier.id2label)
        for row, probs in zip(mean, classifier.predict_proba(pairs)):
            for i, p in enumerate(probs):
                row[to_canonical[i]] += p / 2
    averaged = EnsemblePairClassifier(str(ensemble)).predict_proba(pairs)
    assert [p for row in averaged for p in row] == pytest.approx([p for row in mean for p in row], abs=1e-12)
    expected = confusion_report([e.label for e in read_dnli_pairs(small_valid)],
                                [max(range(3), key=row.__getitem__) for row in mean], ("c", "n", "e"))
    assert manifest["heldout"]["valid.txt"]["accuracy"] == expected["accuracy"]
    assert [m["scorer"] for m in manifest["members"]] == members[:2] and manifest["premise_order"] == "persona_first"
    assert f"sha256:{manifest['weights_sha256'][:12]}" in str(build_metric(f"c-score:chanliang,model={ensemble}").signature())
    assert main(["scorers", "eval", "nli", "--model", str(ensemble), "--data", str(small_valid)]) == 0
    assert json.loads(capsys.readouterr().out)["sets"][str(small_valid)] == manifest["heldout"]["valid.txt"]
    assert main(["scorers", "ensemble", "--member", members[0], "--member", members[2], "--out",
                 str(tmp_path / "mixed"), "--valid", str(small_valid)]) == 2
    assert "different premise orders" in capsys.readouterr().err and not (tmp_path / "mixed").exists()
