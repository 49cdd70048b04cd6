"""Where PAA's pieces are wired, pinned by values: the fusion lands between a GPT-2 block's self-attention and its
feed-forward network (a one-layer forward computed by hand), the cross-attention equals scaled dot-product attention
written out (with key padding), ``dual`` uses its own context gate, the decoder input and labels of a real ConvAI2
turn, the Hits@1 loss and its last-token index under padding, and the default τ numerator."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from pdg_eval_methods.common.config import load_run_config
from pdg_eval_methods.common.data import load_convai2
from pdg_eval_methods.common.method import get_method
from pdg_eval_methods.paa.method import DualAttentionOptions
from pdg_eval_methods.paa.model import CrossAttention, DualAttentionConfig, DualAttentionLM, EncoderState, Fusion, dual_fusion

WIDTH, HEADS = 16, 2


def tiny_gpt2(layers: int = 1):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=40, n_positions=32, n_embd=WIDTH, n_layer=layers, n_head=HEADS,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(config).eval()


def attention_by_hand(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """softmax(q·kᵀ/√d + log keep)·v per head; ``keep`` [B, Lq, Lk] (True = attend)."""
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~keep[:, None], float("-inf"))
    return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1), v)


def heads(x: torch.Tensor) -> torch.Tensor:
    batch, length, width = x.shape
    return x.view(batch, length, HEADS, width // HEADS).transpose(1, 2)


def merge(x: torch.Tensor) -> torch.Tensor:
    batch, _, length, _ = x.shape
    return x.transpose(1, 2).reshape(batch, length, -1)


def cross_attention_by_hand(module: CrossAttention, h: torch.Tensor, encoding: torch.Tensor, mask: torch.Tensor):
    q = heads(module.query(module.norm(h)))
    k, v = module.key_value(encoding).split(WIDTH, dim=-1)
    keep = mask[:, None, :].bool().expand(-1, h.shape[1], -1)
    return module.out(merge(attention_by_hand(q, heads(k), heads(v), keep)))


def perturbed(module: torch.nn.Module, seed: int) -> None:
    """Random weights instead of the near-zero initialisation, so that every term of the fusion shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


def test_cross_attention_is_scaled_dot_product_attention_with_key_padding():
    torch.manual_seed(1)
    module = CrossAttention(WIDTH, HEADS, dropout=0.0).eval()
    perturbed(module, 1)
    h, encoding = torch.randn(2, 3, WIDTH), torch.randn(2, 5, WIDTH)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = module(h, module.memory(encoding), mask)
    assert torch.allclose(out, cross_attention_by_hand(module, h, encoding, mask), atol=1e-5)
    changed = encoding.clone()
    changed[0, 3:] = 100.0  # what lies under the padding does not matter
    assert torch.allclose(module(h, module.memory(changed), mask)[0], out[0], atol=1e-5)


def test_cross_attention_output_dropout_as_gpt2s_resid_dropout():
    module = CrossAttention(WIDTH, HEADS, dropout=0.5)
    perturbed(module, 4)
    h, encoding, mask = torch.randn(4, 6, WIDTH), torch.randn(4, 5, WIDTH), torch.ones(4, 5)
    torch.manual_seed(0)
    zeros = (module.train()(h, module.memory(encoding), mask) == 0).float().mean().item()
    assert 0.4 < zeros < 0.6  # the output projection's bias is not zero: only output dropout zeroes entries
    assert (module.eval()(h, module.memory(encoding), mask) != 0).all()


def test_fusion_sits_between_self_attention_and_feed_forward_of_a_gpt2_block():
    """A one-layer GPT-2 with PAA, computed by hand: x = wte + wpe; h = x + c_proj(causal attention(ln_1 x));
    h' = PAA(h, o_p, o_c) (Eq. 4–7); y = h' + mlp(ln_2 h'); logits = lm_head(ln_f y)."""
    lm = tiny_gpt2()
    model = DualAttentionLM(lm, DualAttentionConfig(encoder_layers=1, encoder_heads=2, dropout=0.0), 40, 0).eval()
    perturbed(model.fusions, 2)
    ids = torch.tensor([[5, 7, 9, 11]])
    persona, context = torch.tensor([[1, 2, 3]]), torch.tensor([[4, 6, 8, 10, 12]])
    enc = {"persona_ids": persona, "persona_mask": torch.ones_like(persona), "context_ids": context,
           "context_mask": torch.ones_like(context)}
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **enc).logits
        state = model.encode(*enc.values())
        block, fusion, base = lm.transformer.h[0], model.fusions[0], lm.transformer
        x = base.wte(ids) + base.wpe(torch.arange(ids.shape[1]))[None]
        q, k, v = block.attn.c_attn(block.ln_1(x)).split(WIDTH, dim=-1)
        causal = torch.ones(4, 4, dtype=torch.bool).tril()[None]
        h = x + block.attn.c_proj(merge(attention_by_hand(heads(q), heads(k), heads(v), causal)))
        o_p = cross_attention_by_hand(fusion.cross_persona, h, state.persona, enc["persona_mask"])
        o_c = cross_attention_by_hand(fusion.cross_context, h, state.context, enc["context_mask"])
        w = torch.sigmoid(fusion.gate(torch.cat([h, o_p], dim=-1)))
        fused = h + w * (w > state.tau) * o_p + (1 - w) * (1 - w > state.tau) * o_c
        y = fused + block.mlp(block.ln_2(fused))
        expected = lm.lm_head(base.ln_f(y))
        # both masks act here, so the test also sees a wrong τ or a swapped mask
        assert 0 < (w > state.tau).float().mean() < 1
        plain = lm(input_ids=ids).logits  # without encodings the hooks change nothing
    assert torch.allclose(logits, expected, atol=1e-4)
    assert not torch.allclose(logits, plain, atol=1e-3)
    assert torch.allclose(plain, lm.lm_head(base.ln_f(h + block.mlp(block.ln_2(h)))), atol=1e-4)


def test_dual_weights_use_the_context_gate():
    config = DualAttentionConfig(fusion="dual", dropout=0.0)
    fusion = Fusion(WIDTH, HEADS, config).eval()
    perturbed(fusion, 3)
    assert fusion.context_gate is not None and fusion.context_gate is not fusion.gate
    h = torch.randn(1, 3, WIDTH)
    persona, context = torch.randn(1, 2, WIDTH), torch.randn(1, 4, WIDTH)
    state = EncoderState(persona, torch.ones(1, 2), context, torch.ones(1, 4), torch.full((1, 1, 1), 0.4))
    o_p = cross_attention_by_hand(fusion.cross_persona, h, persona, torch.ones(1, 2))
    o_c = cross_attention_by_hand(fusion.cross_context, h, context, torch.ones(1, 4))
    with torch.no_grad():
        out = fusion(h, state)
        assert torch.allclose(out, dual_fusion(h, o_p, o_c, fusion.gate, fusion.context_gate, state.tau), atol=1e-5)
        assert not torch.allclose(out, dual_fusion(h, o_p, o_c, fusion.gate, fusion.gate, state.tau), atol=1e-3)


@pytest.fixture(scope="module")
def paa_method():
    config = load_run_config(None, "paa", ["backbone=random:tiny-gpt2", "model.encoder_layers=1",
                                           "model.encoder_heads=2", "model.dropout=0.0"])
    method = get_method("paa")(config)
    method.build()
    method.model.eval()  # the backbone's own dropout off
    return method


def test_decoder_input_and_labels_of_a_real_convai2_turn(paa_method, convai2_valid):
    """persona tokens + [BOS] + response + [EOS], loss on the response and [EOS]; the context encoder reads the last
    9 turns, the newest one the partner's (``Q:``)."""
    example = load_convai2(convai2_valid)[5]
    tokenizer, eos = paa_method.tokenizer, paa_method.tokenizer.eos_token
    (row,) = paa_method.features(example)
    persona_text = "P: " + " ".join(example.persona)
    assert tokenizer.decode(row["input_ids"]) == f"{persona_text}{eos} {example.response}{eos}"
    prompt = len(tokenizer(persona_text)["input_ids"]) + 1
    assert row["labels"][:prompt] == [-100] * prompt
    assert row["labels"][prompt:] == row["input_ids"][prompt:]
    assert tokenizer.decode(row["persona_ids"]) == f"{eos}{persona_text}"
    turns = example.context[-9:]
    roles = ["Q" if (len(turns) - 1 - k) % 2 == 0 else "R" for k in range(len(turns))]
    assert tokenizer.decode(row["context_ids"]) == eos + "\n".join(f"{r}: {t}" for r, t in zip(roles, turns))
    assert len(example.context) > 9 or roles[0] == "Q"  # ConvAI2's partner opens: the first turn is Q when whole
    paa_method.options = dataclasses.replace(paa_method.options, punctuation_spacing=True)
    try:  # the authors' preprocess_text: "a year." -> "a year ."
        (spaced_row,) = paa_method.features(example)
    finally:
        paa_method.options = dataclasses.replace(paa_method.options, punctuation_spacing=False)
    spaced_persona = "P: " + " ".join(s[:-1] + " ." if s.endswith(".") else s for s in example.persona)
    assert tokenizer.decode(spaced_row["input_ids"]) == f"{spaced_persona}{eos} {example.response}{eos}"
    assert spaced_row["context_ids"] == row["context_ids"]  # ConvAI2's turns are spaced already


def test_hits_loss_and_last_token_index_under_padding(paa_method, convai2_valid):
    """Eq. 9's binary cross-entropy on the candidate head's logit at each row's last real token (right padding),
    plus the LM loss of the gold rows only."""
    method = paa_method
    method.options = dataclasses.replace(method.options, objective="candidates", distractors=2)
    try:
        examples = load_convai2(convai2_valid)[:4]
        method.training_examples(examples)
        rows = method.features(examples[0])
        batch = method.collate(rows)
        assert batch["candidate_labels"].tolist() == [1, 0, 0]
        with torch.no_grad():
            out = method.model(**batch)
    finally:
        method.options = dataclasses.replace(method.options, objective="lm")
    lengths = batch["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) > 1  # rows of different lengths: padding is in play
    head = method.model.candidate_head
    with torch.no_grad():  # the decoder's last hidden states with the fusion hooks on
        method.model._state = method.model.encode(batch["persona_ids"], batch["persona_mask"],
                                                  batch["context_ids"], batch["context_mask"])
        try:
            hidden = method.model.lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                     output_hidden_states=True).hidden_states[-1]
        finally:
            method.model._state, method.model._residual = None, {}
    expected_logits = torch.stack([head(hidden[i, n - 1]).squeeze() for i, n in enumerate(lengths.tolist())])
    assert torch.allclose(out["candidate_logits"], expected_logits, atol=1e-5)
    y, s = batch["candidate_labels"].float(), out["candidate_logits"]
    bce = -(y * torch.log(torch.sigmoid(s)) + (1 - y) * torch.log(1 - torch.sigmoid(s))).mean()
    labels = batch["labels"][0, 1:]
    log_probs = out["logits"][0, :-1].log_softmax(-1)
    kept = labels != -100
    nll = -log_probs[kept].gather(1, labels[kept][:, None]).mean()
    assert out["loss"].item() == pytest.approx((bce + nll).item(), rel=1e-5)
    assert (batch["labels"][1:] == -100).all()  # distractors carry no LM loss


def test_hits_head_reads_the_last_real_token():
    model = DualAttentionLM(tiny_gpt2(), DualAttentionConfig(encoder_layers=1, encoder_heads=2), 40, 0)
    hidden = torch.arange(2 * 4 * WIDTH, dtype=torch.float).view(2, 4, WIDTH)
    with torch.no_grad():
        model.candidate_head.weight.zero_()
        model.candidate_head.weight[0, 0] = 1.0
        model.candidate_head.bias.zero_()
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    assert model.candidate_logits(hidden, mask).tolist() == [hidden[0, 2, 0].item(), hidden[1, 3, 0].item()]


def test_default_tau_numerator_is_the_papers_context_count(paa_method):
    """Eq. 6: τ = |I_U| / (|I_U| + |I_P|) with the context (dialogue) tokens on top."""
    assert DualAttentionConfig().tau_numerator == "context"
    assert DualAttentionOptions().tau_numerator == "context"
    assert paa_method.model.config.tau_numerator == "context"


def test_mask_counter_counts_each_kind_over_real_tokens_only():
    from pdg_eval_methods.paa.model import MaskCounter

    counter = MaskCounter(layers=2, training=False)
    w = torch.tensor([[[0.9, 0.5], [0.1, 0.35]], [[0.7, 0.2], [0.8, 0.8]]])  # [B=2, L=2, width=2]
    tau = torch.tensor([0.3, 0.6])[:, None, None]
    mask = torch.tensor([[1, 1], [1, 0]])  # the last token of row 2 is padding
    counter.add(1, w, tau, mask)
    # row 1 (τ .3): .9 persona only, .5 both, .1 context only, .35 both; row 2 (τ .6): .7 persona only, .2 context only
    assert counter.counts[1].tolist() == [2, 2, 2, 0] and counter.counts[0].tolist() == [0, 0, 0, 0]
    report = counter.report()
    assert report["per_layer"][1] == {"persona_only": 1 / 3, "context_only": 1 / 3, "both": 1 / 3, "neither": 0.0}
    assert report["per_layer"][0]["both"] is None and report["all_layers"]["neither"] == 0.0
    counter.add(0, w, tau, mask)
    assert counter.report()["tokens"] == 3 and counter.report()["tau_median"] == pytest.approx(0.6)


def test_training_and_generation_record_the_open_masks(convai2_valid, tmp_path):
    from pdg_eval_methods.common.config import DecodingConfig
    from pdg_eval_methods.common.data import load_convai2
    from pdg_eval_methods.common.training import train
    from pdg_eval_methods.paa.model import example_tau

    method = get_method("paa")(load_run_config(None, "paa", [
        "backbone=random:tiny-gpt2", "model.encoder_layers=1", "model.encoder_heads=2", "training.max_steps=2",
        "training.batch_size=2", "data.dev_fraction=0.0", "training.eval_strategy=no", "training.select_best=false"]))
    method.build()
    examples = load_convai2(convai2_valid)[:4]
    method.fit(examples, tmp_path)
    training = method.notes["mask_rates"]["training"]
    assert training["tokens"] > 0 and training["rows"] == 4 and not training["resumed"]
    for shares in training["per_layer"]:
        assert sum(shares.values()) == pytest.approx(1.0)
    responses = method.generate(examples, DecodingConfig(max_new_tokens=5, batch_size=2))
    method.generation_report(examples, responses, None)
    generation = method.notes["mask_rates"]["generation"]
    rows = [method.sequences(e, [r], [False])[0] for e, r in zip(examples, responses)]
    batch = method.collate(rows)
    assert generation["tokens"] == int(batch["attention_mask"].sum()) and generation["rows"] == 4
    taus = example_tau(batch["persona_mask"], batch["context_mask"]).flatten().tolist()
    assert generation["tau_mean"] == pytest.approx(sum(taus) / 4)
    assert method.model.mask_counter is None  # nothing is counted afterwards


def test_paa_keeps_its_best_checkpoint(convai2_valid, tmp_path):
    """select_best on the harness' own model (not a transformers PreTrainedModel, weights tied through the LM): the
    best evaluation's checkpoint is loaded back at the end."""
    from pdg_eval_methods.common.runner import train_run

    config = load_run_config(None, "paa", [
        "backbone=random:tiny-gpt2", "model.encoder_layers=1", "model.encoder_heads=2", f"data.train={convai2_valid}",
        "data.train_dialogues=4", "data.dev_fraction=0.25", "training.max_steps=4", "training.batch_size=4",
        "training.learning_rate=0.05", "training.eval_strategy=steps", "training.eval_steps=1",
        "training.select_best=true"])
    record = train_run("paa", config, tmp_path / "run", progress=False)
    summary, split = record["summary"], record["data"]["split"]
    best_step, best_ppl = min(summary["dev_curve"], key=lambda point: point[1])
    assert len(summary["dev_curve"]) == 4 and summary["selected_step"] == best_step
    assert split["dev_ppl"] == pytest.approx(best_ppl, rel=1e-4)
