"""Preference optimisation with K completions per prompt: DPO (PAL's persona-alignment stage) and DPOC (IDL's
dialogue preference alignment, IDL §3.3.2) on a small ``transformers.Trainer`` subclass (TRL's DPOTrainer
hard-codes two completions, and TRL ≥ 0.29 reloads its reference model from disk).

Notation: a sequence log-prob ``log π(y|x)`` is the sum of token log-probs over the completion; ρ_y = log πθ(y|x) −
log π_ref(y|x); c = chosen (completion 0), r = rejected (completion 1), k = criterion (completion 2, DPOC only).

* DPO (Rafailov et al. 2023, sigmoid form): L = −log σ(β(ρ_c − ρ_r)).
* DPOC, paper form (IDL §3.3.2, Eq. 5–6): L = −log σ(β(ρ_c − ρ_r)) − min(0, λ(ρ_c − ρ_k)) − min(0, λ(ρ_k − ρ_r)).
* DPOC, code form (IDL's ``dpoc_trainer.py``): z = (ρ_c − ρ_r) + p·[min(0, ρ_c − ρ_k) + min(0, ρ_k − ρ_r)],
  L = −log σ(β z).

The loss functions are pure tensor functions; :class:`PreferenceTrainer` runs one forward over the stacked K·B batch
([all completion 0; all completion 1; …], as IDL's trainer concatenates [chosen; rejected; criterion]) and takes the
reference log-probs from precomputed values, a frozen reference model (an in-memory deep copy of the initial policy by
default — never reloaded from disk), or, for a peft model, the same model with its adapters disabled.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdg_eval.errors import ConfigError

from .config import PreferenceConfig, TrainingConfig
from .training import FeatureDataset, fit_model, is_peft_model, pad_batch

if TYPE_CHECKING:
    import torch

IGNORE = -100
COMPLETION_NAMES = ("chosen", "rejected", "criterion")


# -- log-probs and losses ------------------------------------------------------------------------------------------

def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence sums of token log-probs where ``labels != -100``, and the token counts. Causal-LM shift:
    ``logits[:, :-1]`` predict ``labels[:, 1:]``. Half-precision logits are converted to float32 one row at a time."""
    import torch

    logits = logits[:, :-1]
    labels = labels[:, 1:]
    mask = labels != IGNORE
    index = labels.masked_fill(~mask, 0).unsqueeze(-1)
    if logits.dtype in (torch.float16, torch.bfloat16):
        rows = [row.float().log_softmax(-1).gather(-1, ids).squeeze(-1) for row, ids in zip(logits, index)]
        token_logps = torch.stack(rows)
    else:
        token_logps = logits.gather(-1, index).squeeze(-1) - logits.logsumexp(-1)
    return (token_logps * mask).sum(-1), mask.sum(-1)


def _rewards(beta: float, *ratios: torch.Tensor) -> torch.Tensor:
    import torch

    return beta * torch.stack([r.detach() for r in ratios], dim=-1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1, label_smoothing: float = 0.0
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid DPO (Rafailov et al. 2023): −log σ(β(ρ_c − ρ_r)); with conservative label smoothing ε (TRL's
    ``sigmoid``): −(1−ε) log σ(βz) − ε log σ(−βz). Returns per-example losses [B] and implicit rewards β·ρ [B, 2]."""
    import torch.nn.functional as F

    rho_c, rho_r = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    z = beta * (rho_c - rho_r)
    losses = -(1.0 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    return losses, _rewards(beta, rho_c, rho_r)


def dpoc_paper_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, policy_criterion: torch.Tensor,
                    ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, ref_criterion: torch.Tensor,
                    beta: float = 0.1, penalty: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """DPOC as printed in IDL (§3.3.2, Eq. 5–6; penalty λ = 2 in A.2): the ordering penalties are added outside the
    log-sigmoid, L = −log σ(β(ρ_c − ρ_r)) − min(0, λ(ρ_c − ρ_k)) − min(0, λ(ρ_k − ρ_r)); they vanish when
    ρ_c ≥ ρ_k ≥ ρ_r. Returns per-example losses [B] and rewards β·ρ [B, 3] (chosen, rejected, criterion)."""
    import torch
    import torch.nn.functional as F

    rho_c, rho_r, rho_k = policy_chosen - ref_chosen, policy_rejected - ref_rejected, policy_criterion - ref_criterion
    zero = torch.zeros_like(rho_c)
    losses = (-F.logsigmoid(beta * (rho_c - rho_r)) - torch.minimum(zero, penalty * (rho_c - rho_k))
              - torch.minimum(zero, penalty * (rho_k - rho_r)))
    return losses, _rewards(beta, rho_c, rho_r, rho_k)


def dpoc_code_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, policy_criterion: torch.Tensor,
                   ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, ref_criterion: torch.Tensor,
                   beta: float = 0.1, penalty: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """DPOC as coded by IDL (LLaMA-Factory ``dpoc_trainer.py``, sigmoid variant, ``penality=0.5``): the penalties go
    inside the sigmoid, z = (ρ_c − ρ_r) + p·[min(0, ρ_c − ρ_k) + min(0, ρ_k − ρ_r)], L = −log σ(βz). Returns
    per-example losses [B] and rewards β·ρ [B, 3] (chosen, rejected, criterion)."""
    import torch
    import torch.nn.functional as F

    rho_c, rho_r, rho_k = policy_chosen - ref_chosen, policy_rejected - ref_rejected, policy_criterion - ref_criterion
    zero = torch.zeros_like(rho_c)
    z = (rho_c - rho_r) + penalty * (torch.minimum(zero, rho_c - rho_k) + torch.minimum(zero, rho_k - rho_r))
    return -F.logsigmoid(beta * z), _rewards(beta, rho_c, rho_r, rho_k)


@dataclass(frozen=True)
class PreferenceLoss:
    """A registered loss: ``k`` completions per prompt and the default penalty (None: the loss has none)."""

    name: str
    k: int
    function: Callable[..., tuple[Any, Any]]
    default_penalty: float | None = None

    def check(self, penalty: float | None, label_smoothing: float) -> None:
        """Reject a penalty or label smoothing that this loss does not take."""
        if self.default_penalty is None and penalty is not None:
            raise ConfigError(f"loss {self.name} takes no penalty")
        if self.default_penalty is not None and label_smoothing:
            raise ConfigError(f"loss {self.name} has no label smoothing")

    def __call__(self, policy: torch.Tensor, reference: torch.Tensor, beta: float = 0.1,
                 penalty: float | None = None, label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Losses [B] and rewards [B, k] from policy and reference log-probs of shape [B, k]."""
        if policy.shape != reference.shape or policy.dim() != 2 or policy.size(1) != self.k:
            raise ValueError(f"{self.name}: expected policy/reference log-probs of shape [B, {self.k}]; "
                             f"got {tuple(policy.shape)} and {tuple(reference.shape)}")
        self.check(penalty, label_smoothing)
        args = [*policy.unbind(1), *reference.unbind(1)]
        if self.default_penalty is None:
            return self.function(*args, beta=beta, label_smoothing=label_smoothing)
        return self.function(*args, beta=beta, penalty=self.default_penalty if penalty is None else penalty)


PREFERENCE_LOSSES: dict[str, PreferenceLoss] = {
    "dpo": PreferenceLoss("dpo", 2, dpo_loss),
    "dpoc_paper": PreferenceLoss("dpoc_paper", 3, dpoc_paper_loss, default_penalty=2.0),
    "dpoc_code": PreferenceLoss("dpoc_code", 3, dpoc_code_loss, default_penalty=0.5),
}


def get_loss(name: str) -> PreferenceLoss:
    if name not in PREFERENCE_LOSSES:
        raise ConfigError(f"unknown preference loss {name!r}; expected one of {', '.join(PREFERENCE_LOSSES)}")
    return PREFERENCE_LOSSES[name]


# -- features and batches ------------------------------------------------------------------------------------------

def preference_features(prompt_ids: Sequence[int], completions: Sequence[Sequence[int]], max_length: int
                        ) -> dict[str, Any]:
    """One prompt with K completions (0 = chosen, 1 = rejected, 2 = criterion) as K token sequences prompt +
    completion, ``labels`` −100 on the prompt. All K share the same prompt, cut from the left so that the longest
    completion fits ``max_length``; a completion longer than ``max_length − 1`` is cut from the right (one prompt
    token always remains: under the causal shift the first token of a sequence is never predicted)."""
    if not prompt_ids:
        raise ValueError("a preference prompt needs at least one token (e.g. BOS)")
    if len(completions) < 2 or any(len(c) == 0 for c in completions):
        raise ValueError("a preference example needs at least two non-empty completions")
    if max_length < 2:
        raise ValueError("max_length must be at least 2")
    completions = [list(c[:max_length - 1]) for c in completions]
    keep = max_length - max(len(c) for c in completions)
    prompt = list(prompt_ids[-keep:])
    return {"input_ids": [prompt + c for c in completions],
            "labels": [[IGNORE] * len(prompt) + c for c in completions]}


def collate_preference(batch: Sequence[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """Stack B examples of K completions into one right-padded batch of K·B sequences ordered
    [all completion 0; all completion 1; …] with ``attention_mask``; ``ref_logps`` [B, K] when every example has it."""
    import torch

    k = len(batch[0]["input_ids"])
    if any(len(item["input_ids"]) != k for item in batch):
        raise ValueError("every example of a preference batch needs the same number of completions")
    flat = [{"input_ids": item["input_ids"][j], "labels": item["labels"][j]} for j in range(k) for item in batch]
    out = pad_batch(flat, pad_id)
    with_ref = ["ref_logps" in item for item in batch]
    if any(with_ref):
        if not all(with_ref):
            raise ValueError("ref_logps given for some examples of a batch only")
        out["ref_logps"] = torch.tensor([list(map(float, item["ref_logps"])) for item in batch], dtype=torch.float32)
    return out


def regroup(values: torch.Tensor, k: int) -> torch.Tensor:
    """[K·B] values of a stacked batch → [B, K]."""
    if values.size(0) % k:
        raise ValueError(f"a stacked batch of {values.size(0)} sequences is not a multiple of K={k}")
    return values.view(k, -1).transpose(0, 1)


def batch_logps(model, batch: dict[str, Any], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence log-probs and token counts [B, K] of a stacked batch under ``model``.

    The output layer sees only the hidden states of the positions that predict a completion token (a forward
    pre-hook on ``model.get_output_embeddings()`` selects them): a vocabulary-wide row for every prompt position is
    never made, which for long prompts and short replies is most of the memory and a fifth of the compute of a
    preference step. The values are :func:`sequence_logps` of the full logits (tested); for a model without a
    separate output layer the full logits are made and the same positions kept."""
    import torch

    labels = batch["labels"]
    predicted = labels[:, 1:] != IGNORE  # position t predicts token t + 1
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    handle = None if head is None else head.register_forward_pre_hook(
        lambda module, args: (args[0][:, :-1][predicted], *args[1:]))
    try:
        outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    finally:
        if handle is not None:
            handle.remove()
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    if head is None:  # the full logits: keep the completion positions
        logits = logits[:, :-1][predicted]
    token_logps = logits.float().log_softmax(-1).gather(-1, labels[:, 1:][predicted].unsqueeze(-1)).squeeze(-1)
    rows = predicted.nonzero()[:, 0]
    logps = torch.zeros(labels.size(0), dtype=token_logps.dtype, device=token_logps.device).index_add(0, rows, token_logps)
    return regroup(logps, k), regroup(predicted.sum(-1), k)


def disable_dropout(model) -> None:
    """Set every dropout probability to 0 (PAL and TRL train DPO without dropout in policy and reference)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def precompute_reference_logps(model, dataset, collate: Callable[[list[dict[str, Any]]], dict[str, Any]],
                               batch_size: int = 8) -> torch.Tensor:
    """Reference log-probs [N, K] of every example of ``dataset`` under ``model`` (eval mode, no gradients), so that
    training needs no second model in memory: store row i as ``features[i]["ref_logps"]``. For a peft policy call it
    inside ``with model.disable_adapter():``."""
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = []
    try:
        with torch.no_grad():
            for start in range(0, len(dataset), batch_size):
                items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
                items = [{key: value for key, value in item.items() if key != "ref_logps"} for item in items]
                batch = collate(items)
                batch = {key: value.to(device) for key, value in batch.items()}
                logps, _ = batch_logps(model, batch, len(items[0]["input_ids"]))
                rows.append(logps.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(rows)


# -- trainer -------------------------------------------------------------------------------------------------------

def _trainer_class():
    from transformers import Trainer

    class PreferenceTrainer(Trainer):
        """``transformers.Trainer`` for K-completion preference losses (DPO, DPOC).

        The reference log-probs come from, in order: ``ref_logps`` in the batch (see
        :func:`precompute_reference_logps`); ``ref_model``; for a peft model without ``ref_model``, the model with its
        adapters disabled; otherwise a frozen deep copy of the policy as passed in (made here, in memory). The loss is
        a per-batch mean (``loss_is_scaled_for_ga = False``); ``sft_weight`` γ adds γ · the mean-token NLL of the
        chosen completion (IDL's ``dpo_ftx``). Reward metrics are averaged between logging steps and logged with the
        loss: ``rewards/{chosen,rejected,criterion}``, ``rewards/margins`` (chosen − rejected), ``rewards/accuracies``
        (fraction with ρ_c > ρ_r), ``logps/…`` (``eval_…`` under ``evaluate``). ``no_dropout`` (default) sets the
        dropout of policy and reference to 0, in place, as PAL and TRL do: otherwise ρ is noisy, and ≠ 0 at step 1.
        """

        loss_is_scaled_for_ga = False

        def __init__(self, *args: Any, loss: str = "dpo", beta: float = 0.1, penalty: float | None = None,
                     label_smoothing: float = 0.0, sft_weight: float = 0.0, ref_model=None,
                     no_dropout: bool = True, **kwargs: Any):
            self.loss_spec = get_loss(loss)
            self.beta, self.penalty, self.label_smoothing, self.sft_weight = beta, penalty, label_smoothing, sft_weight
            self.loss_spec.check(penalty, label_smoothing)
            model = kwargs.get("model", args[0] if args else None)
            if model is None:
                raise ConfigError("PreferenceTrainer needs a model")
            if no_dropout:
                disable_dropout(model)
            train_dataset = kwargs.get("train_dataset")
            precomputed = train_dataset is not None and len(train_dataset) > 0 and "ref_logps" in train_dataset[0]
            if ref_model is None and not precomputed and not is_peft_model(model):
                ref_model = copy.deepcopy(model)
            if ref_model is not None:
                ref_model.eval()
                ref_model.requires_grad_(False)
                if no_dropout:
                    disable_dropout(ref_model)
            self.ref_model = ref_model
            self._preference_metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list),
                                                                            "eval": defaultdict(list)}
            super().__init__(*args, **kwargs)
            self.args.remove_unused_columns = False  # ref_logps is no forward argument of the model
            if self.ref_model is not None:
                self.ref_model.to(self.args.device)

        # -- reference ------------------------------------------------------------------------------------------
        def reference_logps(self, model, inputs: dict[str, Any]) -> torch.Tensor:
            import torch

            k = self.loss_spec.k
            if "ref_logps" in inputs:
                return inputs["ref_logps"]
            with torch.no_grad():
                if self.ref_model is not None:
                    return batch_logps(self.ref_model, inputs, k)[0]
                unwrapped = self.accelerator.unwrap_model(model)
                if not is_peft_model(unwrapped):
                    raise ConfigError("no reference: pass ref_model=, precomputed ref_logps, or a peft model")
                with unwrapped.disable_adapter():
                    return batch_logps(model, inputs, k)[0]

        # -- loss -----------------------------------------------------------------------------------------------
        def preference_loss(self, model, inputs: dict[str, Any], split: str) -> torch.Tensor:
            k = self.loss_spec.k
            policy, counts = batch_logps(model, inputs, k)
            reference = self.reference_logps(model, inputs).to(policy.device, policy.dtype)
            losses, rewards = self.loss_spec(policy.float(), reference.float(), beta=self.beta, penalty=self.penalty,
                                             label_smoothing=self.label_smoothing)
            if self.sft_weight:
                losses = losses - self.sft_weight * policy[:, 0] / counts[:, 0].clamp(min=1)
            self._store(split, policy.detach(), rewards)
            return losses.mean()

        def compute_loss(self, model, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None):
            loss = self.preference_loss(model, inputs, "train" if model.training else "eval")
            return (loss, {}) if return_outputs else loss

        def prediction_step(self, model, inputs: dict[str, Any], prediction_loss_only: bool,
                            ignore_keys: list[str] | None = None):
            import torch

            inputs = self._prepare_inputs(inputs)
            with torch.no_grad(), self.compute_loss_context_manager():
                loss = self.preference_loss(model, inputs, "eval")
            return loss.detach(), None, None

        # -- metrics --------------------------------------------------------------------------------------------
        def _store(self, split: str, policy: torch.Tensor, rewards: torch.Tensor) -> None:
            gather = self.accelerator.gather_for_metrics
            rewards, policy = gather(rewards), gather(policy)
            store = self._preference_metrics[split]
            for j in range(self.loss_spec.k):
                name = COMPLETION_NAMES[j] if j < len(COMPLETION_NAMES) else f"completion_{j}"
                store[f"rewards/{name}"].append(rewards[:, j].mean().item())
                store[f"logps/{name}"].append(policy[:, j].mean().item())
            store["rewards/margins"].append((rewards[:, 0] - rewards[:, 1]).mean().item())
            store["rewards/accuracies"].append((rewards[:, 0] > rewards[:, 1]).float().mean().item())

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            split = "eval" if any(key.startswith("eval_") for key in logs) else "train"
            prefix = "eval_" if split == "eval" else ""
            for key, values in self._preference_metrics[split].items():
                if values:
                    logs[prefix + key] = sum(values) / len(values)
            self._preference_metrics[split].clear()
            super().log(logs, start_time)

    return PreferenceTrainer


_TRAINER: list[type] = []


def trainer_class() -> type:
    """:class:`PreferenceTrainer`, defined on first use (importing transformers is slow)."""
    if not _TRAINER:
        _TRAINER.append(_trainer_class())
    return _TRAINER[0]


def __getattr__(name: str):
    if name == "PreferenceTrainer":
        return trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- training ------------------------------------------------------------------------------------------------------

def preference_setup(model, tokenizer, features: list[dict[str, Any]], config: TrainingConfig, ref_model=None
                     ) -> tuple[list[dict[str, Any]], Callable, type, dict[str, Any]]:
    """What :func:`pdg_eval_methods.common.training.fit_model` needs to train ``model`` on preference ``features``
    (:func:`preference_features`) under ``config.preference``: the features (with ``ref_logps`` when
    ``precompute_reference``: computed once, from ``ref_model``, the adapters-disabled peft model, or the initial
    policy itself, so that no second model is kept in memory), the collate function, the trainer class and its
    loss options."""
    import contextlib

    options = config.preference
    spec = get_loss(options.loss)
    spec.check(options.penalty, options.label_smoothing)
    if not features:
        raise ConfigError("no preference features: the training data is empty")
    if any(len(f["input_ids"]) != spec.k for f in features):
        raise ConfigError(f"loss {options.loss} takes {spec.k} completions per prompt")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_preference(batch, pad_id)

    if options.precompute_reference and not all("ref_logps" in f for f in features):
        reference = ref_model if ref_model is not None else model
        context = model.disable_adapter() if ref_model is None and is_peft_model(model) else contextlib.nullcontext()
        with context:
            table = precompute_reference_logps(reference, FeatureDataset(features), collate,
                                               batch_size=config.batch_size)
        features = [{**f, "ref_logps": row.tolist()} for f, row in zip(features, table)]
        ref_model = None
    kwargs = {"loss": options.loss, "beta": options.beta, "penalty": options.penalty,
              "label_smoothing": options.label_smoothing, "sft_weight": options.sft_weight, "ref_model": ref_model}
    return features, collate, trainer_class(), kwargs


def train_preference(model, tokenizer, features: list[dict[str, Any]], output_dir: str | Path,
                     training_config: TrainingConfig, loss: str = "dpo", beta: float = 0.1,
                     penalty: float | None = None, ref_model=None, seed: int = 13, progress: bool = False, *,
                     label_smoothing: float = 0.0, sft_weight: float = 0.0, precompute_reference: bool = False,
                     resume: bool = False, callbacks: Sequence[Any] = ()) -> tuple[list[dict[str, Any]], Any]:
    """Train a bare ``model`` (no :class:`~pdg_eval_methods.common.method.Method` around it) on preference ``features``;
    checkpoints go to ``output_dir/checkpoints``. Returns (the trainer state's log history, the final model).

    With ``training_config.lora`` and a plain model, a new LoRA adapter is trained over it (IDL's DPOC: the
    reference is then the model with adapters disabled, i.e. the SFT model) and merged at the end; a peft model
    passed in is returned unmerged. Methods train the same way through ``training.objective: preference``."""
    import dataclasses

    from transformers import set_seed

    config = dataclasses.replace(training_config, objective="preference", preference=PreferenceConfig(
        loss=loss, beta=beta, penalty=penalty, label_smoothing=label_smoothing, sft_weight=sft_weight,
        precompute_reference=precompute_reference))
    set_seed(seed)
    features, collate, trainer, options = preference_setup(model, tokenizer, features, config, ref_model)
    fit = fit_model(model, features, collate, config, output_dir, seed, progress, resume, callbacks, trainer,
                    **options)
    return fit.state.log_history, fit.model
