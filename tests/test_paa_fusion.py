"""PAA's fusion (Eq. 4–7) and its variants on hand-made tensors: masks, τ boundary cases, gradients through w but not
through the hard masks, and each variant reducing to its formula."""

from __future__ import annotations

import pytest
import torch

from pdg_eval_methods.paa.model import (DualAttentionConfig, EncoderState, Fusion, context_fusion, direct_sum_fusion,
                               dual_fusion, example_tau, paa_fusion, paa_masks, param_fusion, routing_fusion,
                               skipped_fusion)


def gate_with_output(value: float, width: int = 2) -> torch.nn.Linear:
    """A gate whose pre-activation is ``value`` everywhere (zero weights, constant bias)."""
    gate = torch.nn.Linear(2 * width, width)
    with torch.no_grad():
        gate.weight.zero_()
        gate.bias.fill_(value)
    return gate


def test_masks_follow_equation_6_not_the_inverted_listing():
    w = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9])
    m_p, m_c = paa_masks(w, torch.tensor(0.3))
    assert m_p.tolist() == [0, 0, 1, 1, 1]  # 1[w > τ] (strict: w = τ is masked)
    assert m_c.tolist() == [1, 1, 1, 0, 0]  # 1[1 − w > τ]: 0.7 > 0.3 ... 0.1 > 0.3 false; 1 − 0.7 = 0.3 not > 0.3


@pytest.mark.parametrize("tau,expect_p,expect_c", [(0.0, 1, 1), (0.5, 1, 0), (1.0, 0, 0)])
def test_tau_boundaries(tau, expect_p, expect_c):
    """τ = 0 keeps both sources (unless w is exactly 0 or 1); τ = 1 drops both; w = 0.73 at τ = 0.5 keeps persona."""
    h, o_p, o_c = torch.zeros(1, 1, 2), torch.ones(1, 1, 2), 2 * torch.ones(1, 1, 2)
    fused, w = paa_fusion(h, o_p, o_c, gate_with_output(1.0), torch.tensor(tau))
    weight = torch.sigmoid(torch.tensor(1.0))
    expected = weight * expect_p * 1.0 + (1 - weight) * expect_c * 2.0
    assert torch.allclose(fused, torch.full((1, 1, 2), float(expected)))
    assert torch.allclose(w, torch.full_like(w, float(weight)))


def test_tau_counts_non_padding_tokens_with_either_numerator():
    persona = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    context = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]])
    assert example_tau(persona, context, "context").flatten().tolist() == pytest.approx([1 / 4, 3 / 4, 0.0])
    assert example_tau(persona, context, "persona").flatten().tolist() == pytest.approx([3 / 4, 1 / 4, 1.0])
    assert example_tau(torch.zeros(1, 2), torch.zeros(1, 2)).item() == 0.0  # no tokens at all: no division by zero


def test_gradients_flow_through_the_weight_not_the_masks():
    torch.manual_seed(0)
    leaves = [torch.randn(2, 3, 4, requires_grad=True) for _ in range(3)]
    gate = torch.nn.Linear(8, 4)
    tau = torch.full((2, 1, 1), 0.5)
    fused, w = paa_fusion(*leaves, gate, tau)
    fused.sum().backward()
    grads = [leaf.grad.clone() for leaf in leaves] + [gate.weight.grad.clone()]
    m_p, m_c = paa_masks(w, tau)
    assert not m_p.requires_grad and not m_c.requires_grad
    assert 0 < m_p.mean() < 1 and 0 < m_c.mean() < 1  # both masks are active somewhere
    # the same computation with the masks as constants gives the same gradients: none flow through the masks
    for leaf in leaves:
        leaf.grad = None
    gate.zero_grad()
    h, o_p, o_c = leaves
    w2 = torch.sigmoid(gate(torch.cat([h, o_p], -1)))
    (h + w2 * m_p.clone() * o_p + (1 - w2) * m_c.clone() * o_c).sum().backward()
    for got, expected in zip(grads, [leaf.grad for leaf in leaves] + [gate.weight.grad]):
        assert torch.allclose(got, expected)
    assert grads[3].abs().sum() > 0  # the gate learns through w
    assert torch.all(grads[2][m_c == 0] == 0)  # a masked-out context position gets no gradient


def test_each_variant_reduces_to_its_formula():
    torch.manual_seed(1)
    h, o_p, o_c = torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    tau = torch.tensor([[[0.4]], [[0.6]]])
    g, g2, mix = torch.nn.Linear(8, 4), torch.nn.Linear(8, 4), torch.nn.Linear(8, 4)
    w = torch.sigmoid(g(torch.cat([h, o_p], -1)))
    w_c = torch.sigmoid(g2(torch.cat([h, o_c], -1)))
    w_ctx = torch.sigmoid(g(torch.cat([h, o_c], -1)))
    one = lambda x: (x > tau).float()  # noqa: E731
    assert torch.allclose(paa_fusion(h, o_p, o_c, g, tau)[0], h + w * one(w) * o_p + (1 - w) * one(1 - w) * o_c)
    assert torch.allclose(dual_fusion(h, o_p, o_c, g, g2, tau), h + w * one(w) * o_p + w_c * one(w_c) * o_c)
    assert torch.allclose(skipped_fusion(h, o_p, o_c, g, tau), h + w * one(w) * o_p + o_c)
    assert torch.allclose(context_fusion(h, o_p, o_c, g, tau),
                          h + w_ctx * one(w_ctx) * o_c + (1 - w_ctx) * one(1 - w_ctx) * o_p)
    assert torch.allclose(direct_sum_fusion(h, o_p, o_c), h + o_p + o_c)
    assert torch.allclose(param_fusion(h, o_p, o_c, mix), h + mix(torch.cat([o_p, o_c], -1)))
    assert torch.allclose(routing_fusion(h, o_p, o_c, 0.1), h + 0.1 * o_p + 0.9 * o_c + o_c)


@pytest.mark.parametrize("fusion", ["paa", "dual", "skipped", "context", "direct_sum", "param", "routing"])
def test_fusion_modules_have_the_right_parts_and_run(fusion):
    config = DualAttentionConfig(fusion=fusion, dropout=0.0)
    module = Fusion(8, 2, config).eval()
    assert (module.gate is not None) == (fusion in ("paa", "dual", "skipped", "context"))
    assert (module.context_gate is not None) == (fusion == "dual")
    assert (module.mix is not None) == (fusion == "param")
    assert (module.cross_context is None) == (fusion == "routing")  # Attention-Routing shares one cross-attention
    state = EncoderState(torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.long), torch.randn(2, 6, 8),
                         torch.tensor([[1] * 6, [1, 1, 0, 0, 0, 0]]), torch.full((2, 1, 1), 0.5))
    out = module(torch.randn(4, 3, 8), state)  # a decoder batch of 2 sequences per example (beams)
    assert out.shape == (4, 3, 8) and torch.isfinite(out).all()


def test_new_modules_start_as_gpt2_initialises_cross_attention():
    """The authors' code gets its cross-attention from GPT-2 (``add_cross_attention``), initialised N(0, 0.02) with the
    output projection scaled by 1/√(2·layers); a wider default init disturbs a pretrained decoder at step 0."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from pdg_eval_methods.paa.model import DualAttentionLM

    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(n_embd=256, n_layer=8, n_head=4, vocab_size=300, n_positions=64)).eval()
    model = DualAttentionLM(lm, DualAttentionConfig(fusion="paa", dropout=0.0), vocab_size=300, pad_id=0).eval()
    fusion = model.fusions[3]
    assert fusion.cross_persona.query.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert fusion.cross_context.out.weight.std().item() == pytest.approx(0.02 / 4, rel=0.05)
    assert fusion.gate.bias.abs().max().item() == 0 and model.candidate_head.bias.item() == 0
    ids = torch.randint(1, 300, (2, 12))
    ones = torch.ones_like(ids)
    plain = lm(input_ids=ids, attention_mask=ones, output_hidden_states=True).hidden_states[-1]

    def disturbance() -> float:
        # τ = 5 / 17 < 0.5 < w ≈ σ(0): both masks are open, so both cross-attentions reach the residual stream
        wrapped = model(input_ids=ids, attention_mask=ones, persona_ids=ids, persona_mask=ones,
                        context_ids=ids[:, :5], context_mask=ones[:, :5], output_hidden_states=True)
        return ((wrapped.hidden_states[-1] - plain).norm() / plain.norm()).item()

    ours = disturbance()
    for module in model.fusions.modules():
        if isinstance(module, torch.nn.Linear):
            module.reset_parameters()  # PyTorch's default init
    assert 0 < ours < 0.5 * disturbance()
