"""MORPHEUS' model on tiny random LMs: the two stages' losses and where their gradients go, the prefix length, the
persona-free prediction, and a predictor that learns a toy history → code map."""

from __future__ import annotations

import pytest
import torch

from pdg_eval_methods.common.backbones import load_backbone
from pdg_eval_methods.common.training import pad_batch
from pdg_eval_methods.morpheus.model import Morpheus, MorpheusSettings


def batch(generator, b=3, m=5):
    segments = torch.randint(5, 200, (b, m, 6), generator=generator)
    segment_mask = torch.ones_like(segments)
    segment_mask[:, :, 4:] = 0  # right padding: each segment's last real token is at 3
    rows = [{"input_ids": list(range(10, 10 + n)), "labels": [-100] * (n - 3) + list(range(10 + n - 3, 10 + n))}
            for n in (8, 6, 7)[:b]]
    padded = pad_batch(rows, 0)
    history = torch.randint(5, 200, (b, 5), generator=generator)
    return {**padded, "segment_ids": segments, "segment_mask": segment_mask, "history_ids": history,
            "history_mask": torch.ones_like(history)}


@pytest.mark.parametrize("spec", ["random:tiny-gpt2", "random:tiny-llama"])
def test_stage_losses_and_their_gradients(spec):
    lm = load_backbone(spec).model
    torch.manual_seed(0)
    model = Morpheus(lm, MorpheusSettings(codebook_size=8), stage="role_awareness")
    with torch.no_grad():
        model.codebook.normal_()
    inputs = batch(torch.Generator().manual_seed(0))
    out = model(**inputs)
    assert set(out) == {"loss", "L_G"} and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.codebook.grad is None and model.predictor.mlp[0].weight.grad is None  # stage 1: no codebook
    assert model.prefix_net.mlp[0].weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    model.stage = "joint"
    out = model(**inputs)
    assert set(out) == {"loss", "L_G", "L_V", "L_D", "L_C"}
    assert out["loss"].item() == pytest.approx(sum(out[k].item() for k in ("L_G", "L_V", "L_D", "L_C")), rel=1e-5)
    out["loss"].backward()
    assert model.codebook.grad.abs().sum() > 0 and model.predictor.mlp[0].weight.grad.abs().sum() > 0


def test_persona_free_prediction_gives_one_code_and_one_virtual_token_per_slot():
    lm = load_backbone("random:tiny-llama").model
    model = Morpheus(lm, MorpheusSettings(codebook_size=8, slots=5), stage="joint").eval()
    history = torch.randint(5, 200, (2, 7), generator=torch.Generator().manual_seed(2))
    codes, prefix = model.predict(history, torch.ones_like(history))
    assert codes.shape == (2, 5) and int(codes.max()) < 8
    assert prefix.shape == (2, 5, model.shape.layers, model.shape.width)


def test_the_predictor_learns_a_toy_history_to_code_map():
    lm = load_backbone("random:tiny-llama").model
    torch.manual_seed(0)
    model = Morpheus(lm, MorpheusSettings(codebook_size=8, slots=2, dropout=0.0), stage="joint")
    for parameter in model.lm.parameters():
        parameter.requires_grad_(False)
    histories = torch.tensor([[11] * 6, [23] * 6] * 4)
    codes = torch.tensor([[3, 5], [6, 1]] * 4)
    optimizer = torch.optim.Adam(model.predictor.parameters(), lr=3e-3)
    for _ in range(60):
        loss = model.code_loss(model.predictor(model.history_state(histories, torch.ones_like(histories))), codes)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    predicted, _ = model.predict(histories, torch.ones_like(histories))
    assert torch.equal(predicted, codes)  # chance: 1/8 per slot
