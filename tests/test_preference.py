"""Preference losses (DPO, Rafailov et al. 2023; DPOC, IDL §3.3.2 Eq. 5–6 and its code form), K-completion
batching and the PreferenceTrainer on tiny random GPT-2 models (CPU)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from pdg_eval_methods.common.config import TrainingConfig
from pdg_eval_methods.common.preference import (
    PREFERENCE_LOSSES,
    batch_logps,
    collate_preference,
    dpo_loss,
    dpoc_code_loss,
    dpoc_paper_loss,
    precompute_reference_logps,
    preference_features,
    regroup,
    sequence_logps,
    train_preference,
    trainer_class,
)
from pdg_eval_methods.common.training import FeatureDataset, training_arguments


def t(*values: float):
    return torch.tensor(values, dtype=torch.float64)


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


# -- sequence log-probs --------------------------------------------------------------------------------------------

def test_sequence_logps_matches_a_hand_loop():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 11, (3, 7), generator=generator)
    labels[0, :3] = -100  # prompt
    labels[1, :2] = -100
    labels[1, 5:] = -100  # padding
    labels[2, :6] = -100  # one completion token
    logps, counts = sequence_logps(logits, labels)
    for i in range(3):
        total, n = 0.0, 0
        for pos in range(1, 7):
            if labels[i, pos] != -100:
                row = logits[i, pos - 1].tolist()
                norm = math.log(sum(math.exp(v) for v in row))
                total += row[labels[i, pos]] - norm
                n += 1
        assert logps[i].item() == pytest.approx(total, abs=1e-6)
        assert counts[i].item() == n
    assert counts.tolist() == [4, 3, 1]


def test_sequence_logps_half_precision_rows():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 13, generator=generator)
    labels = torch.randint(0, 13, (2, 5), generator=generator)
    labels[:, :2] = -100
    exact, _ = sequence_logps(logits.bfloat16().float(), labels)
    half, _ = sequence_logps(logits.bfloat16(), labels)
    assert half.dtype == torch.float32
    assert torch.allclose(half, exact, atol=1e-5)


# -- losses --------------------------------------------------------------------------------------------------------

def test_dpo_loss_closed_form():
    # rho_c = 1.5 - 0.5 = 1, rho_r = -2 - (-1) = -1 -> rho_c - rho_r = 2; beta 0.1 -> -log sigma(0.2)
    losses, rewards = dpo_loss(t(1.5), t(-2.0), t(0.5), t(-1.0), beta=0.1)
    assert losses.item() == pytest.approx(-log_sigmoid(0.2), abs=1e-12)
    assert rewards[0].tolist() == pytest.approx([0.1, -0.1])
    losses, _ = dpo_loss(t(0.0, 3.0), t(0.0, 1.0), t(0.0, 0.0), t(0.0, 0.0), beta=0.5)
    assert losses.tolist() == pytest.approx([math.log(2), -log_sigmoid(1.0)])


def test_dpo_label_smoothing():
    eps, z = 0.1, 0.1 * 2.0
    losses, _ = dpo_loss(t(2.0), t(0.0), t(0.0), t(0.0), beta=0.1, label_smoothing=eps)
    assert losses.item() == pytest.approx(-(1 - eps) * log_sigmoid(z) - eps * log_sigmoid(-z), abs=1e-12)


def test_dpo_gradient_sign():
    chosen = t(0.3).requires_grad_()
    rejected = t(0.1).requires_grad_()
    losses, _ = dpo_loss(chosen, rejected, t(0.0), t(0.0))
    losses.sum().backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()  # raising log pi(chosen) lowers the loss
    lower, _ = dpo_loss(t(0.4), t(0.1), t(0.0), t(0.0))
    assert lower.item() < losses.item()


def test_dpoc_paper_form():
    beta, lam = 0.1, 2.0
    # ordered rho_c = 3 > rho_k = 1 > rho_r = -1: plain DPO
    losses, rewards = dpoc_paper_loss(t(3.0), t(-1.0), t(1.0), t(0.0), t(0.0), t(0.0), beta=beta, penalty=lam)
    dpo, _ = dpo_loss(t(3.0), t(-1.0), t(0.0), t(0.0), beta=beta)
    assert losses.item() == pytest.approx(dpo.item(), abs=1e-12)
    assert rewards[0].tolist() == pytest.approx([0.3, -0.1, 0.1])
    # criterion outranks chosen: rho_c = 1, rho_k = 2.5, rho_r = 0 -> + lam * (rho_k - rho_c)
    losses, _ = dpoc_paper_loss(t(1.0), t(0.0), t(2.5), t(0.0), t(0.0), t(0.0), beta=beta, penalty=lam)
    assert losses.item() == pytest.approx(-log_sigmoid(0.1) + lam * 1.5, abs=1e-12)
    # both violated: rho_c = 1, rho_k = -3 (below rejected), rho_r = 0.5 (and ref log-probs non-zero)
    losses, _ = dpoc_paper_loss(t(1.2), t(0.7), t(-2.8), t(0.2), t(0.2), t(0.2), beta=beta, penalty=lam)
    assert losses.item() == pytest.approx(-log_sigmoid(0.05) + lam * 3.5, abs=1e-12)
    # criterion above chosen and rejected above criterion at once: rho_c = 0, rho_k = 1, rho_r = 2
    losses, _ = dpoc_paper_loss(t(0.0), t(2.0), t(1.0), t(0.0), t(0.0), t(0.0), beta=beta, penalty=lam)
    assert losses.item() == pytest.approx(-log_sigmoid(-0.2) + lam * 1 + lam * 1, abs=1e-12)


def test_dpoc_code_form():
    beta, p = 0.1, 0.5
    losses, _ = dpoc_code_loss(t(3.0), t(-1.0), t(1.0), t(0.0), t(0.0), t(0.0), beta=beta, penalty=p)
    assert losses.item() == pytest.approx(-log_sigmoid(0.4), abs=1e-12)
    # rho_c = 1, rho_r = 0, rho_k = 2.5: z = 1 + 0.5 * (-1.5) = 0.25
    losses, _ = dpoc_code_loss(t(1.0), t(0.0), t(2.5), t(0.0), t(0.0), t(0.0), beta=beta, penalty=p)
    assert losses.item() == pytest.approx(-log_sigmoid(0.1 * 0.25), abs=1e-12)
    # rho_c = 1, rho_r = 0.5, rho_k = -3: z = 0.5 + 0.5 * (-3.5) = -1.25
    losses, _ = dpoc_code_loss(t(1.2), t(0.7), t(-2.8), t(0.2), t(0.2), t(0.2), beta=beta, penalty=p)
    assert losses.item() == pytest.approx(-log_sigmoid(-0.125), abs=1e-12)


def test_dpoc_reduces_to_dpo_at_penalty_zero():
    generator = torch.Generator().manual_seed(2)
    pc, pr, pk, rc, rr, rk = torch.randn(6, 16, generator=generator, dtype=torch.float64)
    dpo, _ = dpo_loss(pc, pr, rc, rr, beta=0.3)
    for loss in (dpoc_paper_loss, dpoc_code_loss):
        losses, _ = loss(pc, pr, pk, rc, rr, rk, beta=0.3, penalty=0.0)
        assert torch.allclose(losses, dpo, atol=1e-12)


def test_registry():
    assert {name: spec.k for name, spec in PREFERENCE_LOSSES.items()} == {"dpo": 2, "dpoc_paper": 3, "dpoc_code": 3}
    policy, reference = t(1.0, 0.0, 2.5).view(1, 3), torch.zeros(1, 3, dtype=torch.float64)
    losses, rewards = PREFERENCE_LOSSES["dpoc_paper"](policy, reference)  # default lambda 2
    assert losses.item() == pytest.approx(-log_sigmoid(0.1) + 2.0 * 1.5, abs=1e-12)
    assert rewards.shape == (1, 3)
    losses, _ = PREFERENCE_LOSSES["dpoc_code"](policy, reference)  # default p 0.5
    assert losses.item() == pytest.approx(-log_sigmoid(0.025), abs=1e-12)
    with pytest.raises(ValueError):
        PREFERENCE_LOSSES["dpo"](policy, reference)


# -- features and batches ------------------------------------------------------------------------------------------

def test_preference_features_truncate_prompt_from_the_left():
    feature = preference_features([1, 2, 3, 4, 5, 6], [[10, 11], [20, 21, 22, 23], [30]], max_length=7)
    assert feature["input_ids"] == [[4, 5, 6, 10, 11], [4, 5, 6, 20, 21, 22, 23], [4, 5, 6, 30]]
    assert feature["labels"] == [[-100] * 3 + [10, 11], [-100] * 3 + [20, 21, 22, 23], [-100] * 3 + [30]]
    long = preference_features([1, 2], [[7] * 10, [8]], max_length=5)
    assert long["input_ids"] == [[2, 7, 7, 7, 7], [2, 8]]


def _distinct_batch(b: int = 3, k: int = 3) -> list[dict]:
    """Example i, completion j: prompt [1 + i], completion of length 1 + i + j with tokens 100 j + 10 i + t."""
    return [preference_features([1 + i] * (2 + i), [[100 * j + 10 * i + n for n in range(1 + i + j)]
                                                   for j in range(k)], max_length=64) for i in range(b)]


def test_collate_order_and_regroup():
    batch = _distinct_batch()
    out = collate_preference(batch, pad_id=0)
    assert out["input_ids"].shape == (9, (2 + 2) + (1 + 2 + 2))
    for row in range(9):
        j, i = divmod(row, 3)  # [all completion 0; all completion 1; all completion 2]
        expected = batch[i]["input_ids"][j]
        assert out["input_ids"][row, :len(expected)].tolist() == expected
        assert out["labels"][row, :len(expected)].tolist() == batch[i]["labels"][j]
        assert out["attention_mask"][row].sum().item() == len(expected)
        assert (out["labels"][row, len(expected):] == -100).all()
    assert regroup(torch.arange(9), 3).tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    with_ref = collate_preference([{**f, "ref_logps": [i, i + 0.5, i + 0.25]} for i, f in enumerate(batch)], 0)
    assert with_ref["ref_logps"].tolist() == [[0, 0.5, 0.25], [1, 1.5, 1.25], [2, 2.5, 2.25]]


def _tiny_model(vocab: int, seed: int = 0, **fields):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab, n_layer=1, n_embd=32, n_head=2, n_positions=128, bos_token_id=vocab - 1,
                        eos_token_id=vocab - 1, **fields)
    return GPT2LMHeadModel(config)


def test_batched_logps_regroup_per_example():
    model = _tiny_model(400).eval()
    batch = _distinct_batch()
    logps, counts = batch_logps(model, collate_preference(batch, pad_id=0), 3)
    assert logps.shape == (3, 3)
    with torch.no_grad():
        for i, feature in enumerate(batch):
            for j in range(3):
                ids = torch.tensor([feature["input_ids"][j]])
                alone, n = sequence_logps(model(input_ids=ids).logits, torch.tensor([feature["labels"][j]]))
                assert logps[i, j].item() == pytest.approx(alone.item(), abs=1e-5)
                assert counts[i, j].item() == n.item() == 1 + i + j


@pytest.mark.parametrize("backbone", ["random:tiny-gpt2", "random:tiny-llama"])
def test_completion_only_logps_equal_the_full_logits_with_their_gradients(backbone):
    """The output layer applied to the completion positions only gives the log-probs, and the gradients, of
    :func:`sequence_logps` over the full logits (right-padded prompts of different lengths, K = 2)."""
    from pdg_eval_methods.common.backbones import load_backbone

    model = load_backbone(backbone, seed=2).model.eval()  # no dropout: two passes must see the same network
    torch.manual_seed(3)
    vocab = model.get_output_embeddings().out_features
    batch = [preference_features(torch.randint(1, vocab, (n,)).tolist(),
                                 [torch.randint(1, vocab, (m,)).tolist() for m in (2 + n % 3, 1 + n % 4)], 64)
             for n in (3, 9, 5)]
    stacked = collate_preference(batch, pad_id=0)
    fast, counts = batch_logps(model, stacked, 2)
    fast.sum().backward()
    fast_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logits = model(input_ids=stacked["input_ids"], attention_mask=stacked["attention_mask"]).logits
    full, full_counts = sequence_logps(logits, stacked["labels"])
    full.sum().backward()
    assert torch.allclose(fast, full.view(2, -1).T, atol=1e-5) and counts.tolist() == full_counts.view(2, -1).T.tolist()
    for fast_grad, p in zip(fast_grads, model.parameters()):
        assert torch.allclose(fast_grad, p.grad, atol=1e-5)
    assert not model.get_output_embeddings()._forward_pre_hooks  # the selection is removed after the pass


# -- training ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    from pdg_eval_methods.common.backbones import gpt2_tokenizer
    from pdg_eval.errors import ConfigError

    try:
        return gpt2_tokenizer()
    except ConfigError as exc:
        pytest.skip(str(exc))


PROMPTS = ["persona: i love cats. user: do you have pets? bot:", "persona: i am a chef. user: what do you do? bot:",
           "persona: i live in paris. user: where are you from? bot:"]
CHOSEN = [" yes , two cats !", " i cook in a small restaurant .", " i live in paris , in france ."]
CRITERION = [" yes , two dogs !", " i cook at home only .", " i live in rome , in italy ."]
REJECTED = [" no , i hate animals .", " i am a pilot .", " i have never been to europe ."]


def _features(tokenizer, k: int) -> list[dict]:
    eos = [tokenizer.eos_token_id]
    columns = [CHOSEN, REJECTED, CRITERION][:k]
    return [preference_features(tokenizer.encode(prompt), [tokenizer.encode(col[i]) + eos for col in columns], 64)
            for i, prompt in enumerate(PROMPTS)]


class Compact:
    """GPT-2 token ids renumbered 0..n-1 over the test texts: a 50,257-way softmax costs ~0.3 s a step on a busy
    CPU, a ~100-way one milliseconds."""

    def __init__(self, tokenizer, k: int):
        full = _features(tokenizer, k)
        ids = sorted({i for f in full for seq in f["input_ids"] for i in seq} | {tokenizer.pad_token_id})
        index = {token: n for n, token in enumerate(ids)}
        self.vocab, self.pad_token_id, self.eos_token_id = len(ids), index[tokenizer.pad_token_id], None
        self.features = [{"input_ids": [[index[i] for i in seq] for seq in f["input_ids"]],
                          "labels": [[index[i] if i != -100 else -100 for i in seq] for seq in f["labels"]]}
                         for f in full]


def _collate(pad_id: int):
    return lambda batch: collate_preference(batch, pad_id)


def _logps(model, pad_id: int, features, k: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return batch_logps(model, collate_preference(features, pad_id), k)[0]


def _trainer(model, features, pad_id: int, config: TrainingConfig, output_dir, **options):
    from transformers.trainer_callback import PrinterCallback

    args = training_arguments(config, output_dir, seed=13, n_features=len(features), progress=False)
    trainer = trainer_class()(model=model, args=args, train_dataset=FeatureDataset(features),
                              data_collator=_collate(pad_id), **options)
    trainer.remove_callback(PrinterCallback)
    return trainer


def _config(**fields) -> TrainingConfig:
    values = {"learning_rate": 3e-3, "batch_size": 3, "max_steps": 25, "logging_steps": 1, "save_steps": 10_000,
              "warmup_ratio": 0.0, "lr_scheduler": "constant", "max_length": 64}
    return TrainingConfig(**(values | fields))


def _losses(history: list[dict]) -> list[float]:
    return [entry["loss"] for entry in history if "loss" in entry]


def test_dpo_training_learns_the_preference(tokenizer, tmp_path):
    data = Compact(tokenizer, 2)
    model = _tiny_model(data.vocab)
    initial = copy.deepcopy(model)
    features, config = data.features, _config()
    trainer = _trainer(model, features, data.pad_token_id, config, tmp_path, loss="dpo", beta=0.1)
    assert trainer.ref_model is not None and trainer.ref_model is not model
    before = {name: value.clone() for name, value in trainer.ref_model.state_dict().items()}
    trainer.train()
    history = trainer.state.log_history
    losses = _losses(history)
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5)  # policy = reference at step 1 (dropout disabled)
    assert losses[-1] < losses[0] - 0.2
    logged = [entry for entry in history if "rewards/margins" in entry]
    assert len(logged) == config.max_steps and logged[-1]["rewards/accuracies"] == 1.0
    for name, value in trainer.ref_model.state_dict().items():
        assert torch.equal(value, before[name]), name
    rho = _logps(trainer.model, data.pad_token_id, features, 2) - _logps(initial, data.pad_token_id, features, 2)
    margins = rho[:, 0] - rho[:, 1]
    assert (margins > 2.0).all(), margins
    metrics = trainer.evaluate(FeatureDataset(features))
    assert metrics["eval_loss"] < 0.5 and metrics["eval_rewards/accuracies"] == 1.0
    assert metrics["eval_rewards/margins"] == pytest.approx(0.1 * margins.mean().item(), rel=1e-4)


def test_sft_weight_adds_the_chosen_mean_token_nll(tokenizer, tmp_path):
    data = Compact(tokenizer, 2)
    model = _tiny_model(data.vocab, seed=6)
    batch = collate_preference(data.features, data.pad_token_id)
    losses = {}
    for weight in (0.0, 0.5):
        trainer = _trainer(model, data.features, data.pad_token_id, _config(), tmp_path, ref_model=_tiny_model(
            data.vocab, seed=7), sft_weight=weight)
        model.eval()
        with torch.no_grad():
            losses[weight] = trainer.compute_loss(model, batch).item()
    policy, counts = batch_logps(model, batch, 2)
    nll = (-policy[:, 0] / counts[:, 0]).mean().item()
    assert losses[0.5] == pytest.approx(losses[0.0] + 0.5 * nll, abs=1e-5)


def test_dpoc_code_training_orders_chosen_criterion_rejected(tokenizer, tmp_path):
    data = Compact(tokenizer, 3)
    model = _tiny_model(data.vocab, seed=1)
    initial = copy.deepcopy(model)
    features = data.features
    history, trained = train_preference(model, data, features, tmp_path, _config(max_steps=30),
                                        loss="dpoc_code", beta=0.1, penalty=0.5)
    losses = _losses(history)
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5)
    assert losses[-1] < losses[0] - 0.2
    assert "rewards/criterion" in history[0]
    rho = _logps(trained, data.pad_token_id, features, 3) - _logps(initial, data.pad_token_id, features, 3)
    chosen, rejected, criterion = rho.unbind(1)
    assert (chosen > criterion).all() and (criterion > rejected).all(), rho


def test_precomputed_reference_matches_reference_model(tokenizer, tmp_path):
    data = Compact(tokenizer, 2)
    features = data.features
    policy = _tiny_model(data.vocab, seed=2)
    reference = _tiny_model(data.vocab, seed=3)  # differs from the policy: the first loss is not log 2
    config = _config(max_steps=1)
    live, _ = train_preference(copy.deepcopy(policy), data, features, tmp_path / "live", config,
                               ref_model=copy.deepcopy(reference))
    pre, _ = train_preference(copy.deepcopy(policy), data, features, tmp_path / "pre", config,
                              ref_model=copy.deepcopy(reference), precompute_reference=True)
    table = precompute_reference_logps(reference, FeatureDataset(features), _collate(data.pad_token_id), batch_size=2)
    assert table.shape == (3, 2)
    given = [{**f, "ref_logps": row.tolist()} for f, row in zip(features, table)]
    stored, _ = train_preference(copy.deepcopy(policy), data, given, tmp_path / "stored", config)
    first = _losses(live)[0]
    assert abs(first - math.log(2)) > 1e-3
    assert _losses(pre)[0] == pytest.approx(first, abs=1e-5)
    assert _losses(stored)[0] == pytest.approx(first, abs=1e-5)


def test_peft_reference_is_the_model_without_adapters(tokenizer, tmp_path):
    peft = pytest.importorskip("peft")
    data = Compact(tokenizer, 2)
    base = _tiny_model(data.vocab, seed=4)
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"],
                                                      task_type="CAUSAL_LM"))
    features, pad = data.features, data.pad_token_id
    trainer = _trainer(model, features, pad, _config(max_steps=20, learning_rate=3e-2), tmp_path, loss="dpo")
    assert trainer.ref_model is None  # no copy: the reference is the model with adapters disabled
    trainer.train()
    losses = _losses(trainer.state.log_history)
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5)  # LoRA B = 0 at init: policy = reference
    assert losses[-1] < losses[0] - 0.1
    with model.disable_adapter():
        reference = _logps(model, pad, features, 2)
    rho = _logps(model, pad, features, 2) - reference
    assert (rho[:, 0] > rho[:, 1]).all(), rho


def test_train_preference_with_lora_config_merges_the_new_adapter(tokenizer, tmp_path):
    pytest.importorskip("peft")
    from pdg_eval_methods.common.config import LoraConfig

    data = Compact(tokenizer, 3)
    model = _tiny_model(data.vocab, seed=8)
    config = _config(max_steps=3, learning_rate=1e-2, lora=LoraConfig(r=4, alpha=8, target_modules=["c_attn"]))
    history, trained = train_preference(model, data, data.features, tmp_path, config, loss="dpoc_paper")
    assert _losses(history)[0] == pytest.approx(math.log(2), abs=1e-5)  # reference = the model without adapters
    assert type(trained).__name__ == "GPT2LMHeadModel"  # merged
    assert (tmp_path / "checkpoints").is_dir()
