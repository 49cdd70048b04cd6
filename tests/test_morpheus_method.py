"""MORPHEUS on the harness: persona segments, the two stages and generation through the CLI with a tiny random LM,
the codebook initialised from the stage-1 encodings, and generation that never reads the persona."""

from __future__ import annotations

import json

import pytest

from pdg_eval_methods.morpheus.method import persona_segments
from pdg_eval.cli.main import main
from tests.conftest import shared_or_skip


def test_persona_segments_are_cycled_or_cut_to_the_slots():
    assert persona_segments(["i like tea. i run.", "i am tall."], "en", 5) == [
        "i like tea.", "i run.", "i am tall.", "i like tea.", "i run."]
    assert persona_segments(["a.", "b.", "c.", "d.", "e.", "f."], "en", 5) == ["a.", "b.", "c.", "d.", "e."]
    assert persona_segments(["我喜欢茶。我跑步。"], "zh", 3) == ["我喜欢茶。", "我跑步。", "我喜欢茶。"]


@pytest.fixture(scope="module")
def settings():
    train = shared_or_skip("data", "convai2_train_sample")
    valid = shared_or_skip("data", "convai2", "valid_self_original.txt")
    return [f"--set={s}" for s in (
        "backbone=random:tiny-llama", f"data.train={json.dumps({'path': str(train), 'split': 'train'})}",
        "data.train_dialogues=4", "training.batch_size=4", "training.logging_steps=1", "training.max_length=256",
        "model.codebook_size=4", f"data.eval={valid}", "data.eval_dialogues=1", "decoding.max_new_tokens=6",
        "decoding.batch_size=4")]


@pytest.fixture(scope="module")
def stage1(settings, tmp_path_factory):
    folder = tmp_path_factory.mktemp("morpheus") / "s1"
    assert main(["run", "morpheus", "train", "--out", str(folder), "-q", *settings]) == 0
    return folder


def test_two_stages_and_persona_free_generation_through_the_cli(settings, stage1, tmp_path, convai2_valid):
    joint = tmp_path / "joint"
    assert main(["run", "morpheus", "train", "--out", str(joint), "-q", *settings, "--set=model.stage=joint"]) == 2
    assert main(["run", "morpheus", "train", "--out", str(joint), "-q", "--init-from", str(stage1), *settings,
                 "--set=model.stage=joint"]) == 0
    record = json.loads((joint / "run.json").read_text())
    parts = record["summary"]["loss_parts"]
    assert parts and set(parts[0]) == {"step", "L_G", "L_V", "L_D", "L_C"}  # each part of the joint loss is logged
    assert json.loads((stage1 / "run.json").read_text())["summary"]["loss_parts"][0].keys() == {"step", "L_G"}
    init = record["method_notes"]["codebook_init"]
    assert init["method"] == "em" and init["codes"] == 4 and init["segments"] >= 4 and init["converged"]
    preds = tmp_path / "preds.jsonl"
    assert main(["run", "morpheus", "generate", "--checkpoint", str(joint), "--out", str(preds), "-q", *settings]) == 0
    records = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(records) == 8 and all(len(r["meta"]["method"]["codes"]) == 5 for r in records)
    # the same dialogue with other personas: the same codes and replies (the persona is never read)
    other = tmp_path / "other_personas.txt"
    lines = convai2_valid.read_text().splitlines()[:20]
    other.write_text("\n".join(line.replace("your persona: i", "your persona: you") for line in lines) + "\n")
    again = tmp_path / "again.jsonl"
    assert main(["run", "morpheus", "generate", "--checkpoint", str(joint), "--out", str(again), "-q", *settings,
                 f"--set=data.eval={other}"]) == 0
    changed = [json.loads(line) for line in again.read_text().splitlines()]
    assert [r["persona"] for r in changed] != [r["persona"] for r in records]
    assert [(r["response"], r["meta"]["method"]) for r in changed] == [(r["response"], r["meta"]["method"])
                                                                        for r in records]
    assert main(["run", "morpheus", "generate", "--checkpoint", str(joint), "--out", str(tmp_path / "x.jsonl"), "-q",
                 "--with-nll", *settings]) == 2


def test_the_logged_loss_is_the_mean_over_accumulated_micro_batches(settings, tmp_path):
    """With gradient accumulation the Trainer divides MORPHEUS' micro-batch means by the accumulation steps: the
    logged loss of stage 1 is its only part, L_G (it was their sum: 2 x L_G with 2 micro-batches)."""
    out = tmp_path / "ga2"
    assert main(["run", "morpheus", "train", "--out", str(out), "-q", *settings, "--set=training.gradient_accumulation=2",
                 "--set=data.train_dialogues=2"]) == 0
    summary = json.loads((out / "run.json").read_text())["summary"]
    assert summary["losses"] and len(summary["losses"]) == len(summary["loss_parts"])
    for (step, loss), parts in zip(summary["losses"], summary["loss_parts"]):
        assert step == parts["step"] and loss == pytest.approx(parts["L_G"], rel=1e-3)


def test_generate_never_touches_the_persona(convai2_valid):
    from pdg_eval_methods.common.data import load_convai2
    from pdg_eval_methods.common.method import get_method, method_config

    config = method_config("morpheus", None, ["backbone=random:tiny-llama", "model.codebook_size=4",
                                               "decoding.max_new_tokens=4", "decoding.batch_size=4"])
    method = get_method("morpheus")(config)
    method.build()

    class NoPersona:
        def __init__(self, example):
            self._example = example

        def __getattr__(self, name):
            if name == "persona":
                raise AssertionError("generate read the persona")
            return getattr(self._example, name)

    examples = [NoPersona(e) for e in load_convai2(convai2_valid)[:5]]
    texts = method.generate(examples, config.decoding)
    assert len(texts) == 5 and len(method.record_meta) == 5


def test_ablation_runners(settings, stage1, tmp_path):
    from pdg_eval_methods.morpheus import ablations

    quick = [*settings, "--set=training.max_steps=2", "--set=data.eval_dialogues=1"]
    out = tmp_path / "table4"
    args = ["table4", "--stage1", str(stage1), "--out", str(out), "-q", *quick]
    assert ablations.main([*args, "--only", "w/o CL", "--only", "w/o PC", "--only", "w/o RA"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [row["name"] for row in summary["rows"]] == ["w/o CL", "w/o RA", "w/o PC"]
    assert all(row["scores"] and row["wall_s"] > 0 for row in summary["rows"])
    runs = {name: json.loads((out / folder / "run.json").read_text()) for name, folder in
            (("w/o CL", "wo_CL"), ("w/o RA", "wo_RA"), ("w/o PC", "wo_PC"))}
    assert runs["w/o CL"]["config"]["model"]["loss_weights"]["C"] == 0 and runs["w/o CL"]["init_from"]
    assert runs["w/o RA"]["init_from"] is None and runs["w/o PC"]["method"] == "causal_lm_ft"
    assert (out / "table4.png").stat().st_size > 0
    assert ablations.main([*args, "--only", "w/o CL"]) == 0  # finished variants are read back
    assert ablations.main([*args, "--only", "w/o XYZ"]) == 2
    sizes = tmp_path / "sizes"
    assert ablations.main(["codebook-size", "--stage1", str(stage1), "--out", str(sizes), "-q", *quick,
                           "--sizes", "2"]) == 0  # from the stage-1 run of 4 codes
    rows = json.loads((sizes / "summary.json").read_text())["rows"]
    assert [row["name"] for row in rows] == ["2"]
    assert json.loads((sizes / "2" / "run.json").read_text())["method_notes"]["codebook_init"]["codes"] == 2


def test_code_usage_counts_nearest_codes_by_hand(settings, stage1, capsys, monkeypatch):
    """A collapsed codebook shows as few codes used and segments far from every code: the numbers by hand on four
    points and three codes, then the command on the tiny role-awareness run (measured against its EM start)."""
    import torch

    from pdg_eval_methods.morpheus import ablations
    from pdg_eval_methods.morpheus.method import MORPHEUS

    points = torch.tensor([[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [0.0, 0.2]])
    monkeypatch.setattr(MORPHEUS, "encode_training_segments", lambda self, examples: points)
    method = MORPHEUS.__new__(MORPHEUS)
    method.options = type("Options", (), {"stage": "joint"})()
    method.model = type("Model", (), {"codebook": torch.tensor([[0.0, 0.0], [4.0, 0.0], [9.0, 9.0]])})()
    usage = method.code_usage([])
    assert usage["codes_used"] == 2 and usage["most_used"] == [(0, 3), (1, 1)] and usage["segments"] == 4
    assert usage["mean_distance_to_nearest"] == pytest.approx((0 + 1 + 1 + 0.2) / 4)
    assert usage["mean_encoding_norm"] == pytest.approx((0 + 1 + 5 + 0.2) / 4)
    monkeypatch.undo()
    assert ablations.main(["code-usage", str(stage1)]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["stage"] == "role_awareness" and row["codes"] == 4 and 1 <= row["codes_used"] <= 4
    assert ablations.main(["code-usage", str(stage1.parent / "missing")]) == 2
