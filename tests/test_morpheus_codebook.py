"""MORPHEUS' codebook algorithms against hand computations: the EM of Eq. 5–7, the assignment of Eq. 8, L_V's values
and gradient targets, the straight-through modes, L_C in both forms, and the focal loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pdg_eval_methods.morpheus import codebook as cb
from pdg_eval.errors import ConfigError


def test_one_em_round_equals_the_hand_computation():
    points = torch.tensor([[0.0], [1.0], [3.0], [4.0]], dtype=torch.float64)
    means = torch.tensor([[0.5], [3.5]], dtype=torch.float64)
    variances = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    x, mu, var = points.numpy()[:, 0], means.numpy()[:, 0], variances.numpy()[:, 0]
    density = np.exp(-(x[:, None] - mu) ** 2 / (2 * var)) / np.sqrt(2 * np.pi * var)  # uniform prior cancels
    posterior = density / density.sum(1, keepdims=True)
    assert np.allclose(cb.e_step(points, means, variances).numpy(), posterior)
    new_means, new_variances = cb.m_step(points, torch.from_numpy(posterior))
    expected_means = (posterior * x[:, None]).sum(0) / posterior.sum(0)
    expected_variances = (posterior * (x[:, None] - expected_means) ** 2).sum(0) / posterior.sum(0)
    assert np.allclose(new_means.numpy()[:, 0], expected_means)
    assert np.allclose(new_variances.numpy()[:, 0], expected_variances)


def test_em_recovers_a_seeded_three_component_mixture():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    points = torch.cat([c + 0.2 * torch.randn(300, 2, generator=generator) for c in centres])
    mixture = cb.em_mixture(points, 3, seed=1)
    assert mixture.converged and mixture.iterations < 500
    distances = torch.cdist(centres, mixture.means)
    assert sorted(distances.argmin(1).tolist()) == [0, 1, 2]  # one mean per centre
    assert distances.min(1).values.max() < 0.05
    assert torch.allclose(mixture.variances, torch.full((3, 2), 0.04), atol=0.01)
    assert torch.equal(cb.em_mixture(points, 3, seed=1).means, mixture.means)  # seeded
    with pytest.raises(ConfigError, match="at least 5 distinct"):
        cb.em_mixture(points[:4], 5)


def test_other_initialisations():
    points = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    assert cb.initial_codebook(points, 4, "sequential").tolist() == [[1, 0], [0, 2], [3, 3], [1, 0]]
    assert cb.initial_codebook(points, 2, "mean").tolist() == [[1.25, 1.25]] * 2
    random = cb.initial_codebook(points, 10, "random", seed=3)
    assert random.shape == (10, 2) and random.abs().max() <= 0.1
    with pytest.raises(ConfigError):
        cb.initial_codebook(points, 2, "kmeans")


def test_nearest_code_and_vq_loss_gradients():
    codes = torch.tensor([[0.0, 0.0], [2.0, 2.0], [5.0, 0.0]], requires_grad=True)
    encodings = torch.tensor([[1.9, 2.2], [4.0, 0.5]], requires_grad=True)
    assigned = cb.nearest_codes(encodings, codes)
    assert assigned.tolist() == [1, 2]
    loss = cb.vq_loss(encodings, codes[assigned], beta=0.05)
    picked = codes.detach()[assigned]
    assert loss.item() == pytest.approx(1.05 * F.mse_loss(picked, encodings.detach()).item())
    loss.backward()
    n = encodings.numel()
    assert torch.allclose(codes.grad[assigned], 2 * (picked - encodings.detach()) / n)  # term 1 only
    assert torch.equal(codes.grad[0], torch.zeros(2))
    assert torch.allclose(encodings.grad, 0.05 * 2 * (encodings.detach() - picked) / n)  # the β term only


@pytest.mark.parametrize("mode, value_of, grad_to", [("none", "p", "p"), ("released", "p", "e"), ("vqvae", "e", "p")])
def test_straight_through_modes(mode, value_of, grad_to):
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    e = torch.tensor([0.5, 0.5], requires_grad=True)
    z = cb.straight_through(p, e, mode)
    assert torch.equal(z.detach(), (p if value_of == "p" else e).detach())
    (z * torch.tensor([3.0, 4.0])).sum().backward()
    receiver, other = (p, e) if grad_to == "p" else (e, p)
    assert torch.equal(receiver.grad, torch.tensor([3.0, 4.0]))
    assert other.grad is None or torch.equal(other.grad, torch.zeros(2))
    with pytest.raises(ConfigError):
        cb.straight_through(p, e, "other")


def test_contrastive_loss_in_both_forms():
    codebook = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])
    p = torch.tensor([[2.0, 0.2]])
    cos = F.cosine_similarity(p, codebook)
    expected = -math.log(math.exp(cos[0] / 0.5) / sum(math.exp(c / 0.5) for c in cos))
    assert cb.contrastive_loss(p, codebook, torch.tensor([0]), tau=0.5).item() == pytest.approx(expected)
    # released form: the assigned code against unused codes only (code 1 is used by the batch's second encoding)
    both = torch.tensor([[2.0, 0.2], [0.1, 3.0]])
    loss = cb.contrastive_loss(both, codebook, torch.tensor([0, 1]), tau=0.07, negatives=20)
    rows = F.cosine_similarity(both[:, None], codebook[None], dim=-1) / 0.07
    manual = [-torch.log_softmax(torch.stack([rows[i, k], rows[i, 2], rows[i, 3]]), 0)[0] for i, k in enumerate([0, 1])]
    assert loss.item() == pytest.approx(torch.stack(manual).mean().item(), rel=1e-5)


def test_focal_loss_closed_form():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([0, 0])
    assert cb.focal_loss(logits, targets, 0.0).item() == pytest.approx(F.cross_entropy(logits, targets).item())
    p = torch.softmax(logits, -1)[:, 0]
    expected = (-(1 - p) ** 2 * torch.log(p)).mean()
    assert cb.focal_loss(logits, targets, 2.0).item() == pytest.approx(expected.item())
