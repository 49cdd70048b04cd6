"""MORPHEUS' persona codebook (Tang et al., EMNLP 2024, §3.3–3.4): its initialisations, the nearest-code assignment,
the VQ, contrastive and code-prediction losses, and the ways the LM's gradient reaches codebook or encoder.

* **EM initialisation** (Eq. 5–7): a mixture of N diagonal Gaussians with a uniform prior over every training
  encoding, the means started at N distinct encodings drawn k-means++-style (the paper does not say; the code draws
  them uniformly in [0, 1)); E-step in the log domain, M-step weighted means and variances (floored), until the means move less than
  ``tol`` (‖Δμ‖, at most ``max_iter`` rounds); the means become the codes. The released code's min-max-normalised
  "responsibilities" are not reproduced. ``sequential``, ``mean`` and ``random`` are the paper's other
  initialisations (the last: U(−1/N, 1/N), as the code's ``nn.Embedding`` init).
* **Assignment** (Eq. 8): k = argmin_k ‖p − e_k‖₂.
* **L_V** (Eq. 9): ‖sg[p] − e_k‖² + β‖sg[e_k] − p‖², β = 0.05 (mean squared error per element; the released code
  drops the commitment term: ``beta=0``).
* **L_C** (Eq. 14): −log softmax over all N codes of cos(p, e)/τ, τ = 0.5; the released code's form contrasts the
  assigned code with at most 20 codes no example of the batch uses, τ = 0.07.
* **L_D** (Eq. 13): cross-entropy of the code predictor; the released code's focal loss (γ = 2).
* **Straight-through** (``ste``): ``none`` — the prefix is built from p (Eq. 10 as printed; the LM's gradient reaches
  the encoder, not the codebook); ``released`` — z = e_k + sg(p − e_k): forward value p, gradient to e_k (the code);
  ``vqvae`` — z = p + sg(e_k − p): forward value e_k, gradient to p (van den Oord et al. 2017).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pdg_eval.errors import ConfigError

INITS = ("em", "sequential", "mean", "random")
STE_MODES = ("none", "released", "vqvae")
BETA = 0.05
TAU = 0.5
RELEASED_TAU = 0.07
RELEASED_NEGATIVES = 20
FOCAL_GAMMA = 2.0


@dataclass(frozen=True)
class Mixture:
    means: torch.Tensor  # [N, d]
    variances: torch.Tensor  # [N, d]
    iterations: int
    converged: bool


def log_gaussian(points: torch.Tensor, means: torch.Tensor, variances: torch.Tensor) -> torch.Tensor:
    """log N(p_i; μ_k, diag σ_k²) for every point and component: [|D|, N]."""
    diff = points[:, None, :] - means[None, :, :]
    return -0.5 * ((diff ** 2 / variances[None]).sum(-1) + torch.log(variances).sum(-1)[None]
                   + points.shape[1] * math.log(2 * math.pi))


def e_step(points: torch.Tensor, means: torch.Tensor, variances: torch.Tensor) -> torch.Tensor:
    """Eq. 5 with a uniform prior: P(z_i = k | p_i), [|D|, N] (the prior cancels)."""
    return torch.softmax(log_gaussian(points, means, variances), dim=1)


def m_step(points: torch.Tensor, posterior: torch.Tensor, floor: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 6–7: the posterior-weighted means and variances (a component no point supports keeps weight ~0; its
    variance is floored)."""
    weight = posterior.sum(0)[:, None].clamp_min(1e-12)  # the effective sample size of each component
    means = posterior.T @ points / weight
    variances = (posterior.T @ points ** 2) / weight - means ** 2
    return means, variances.clamp_min(floor)


def spread_points(points: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """N of the rows drawn k-means++-style (Arthur & Vassilvitskii 2007): the first uniformly, each next with
    probability ∝ its squared distance to the nearest one drawn — starting means that rarely share a cluster."""
    generator = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(len(points), (1,), generator=generator))]
    nearest = ((points - points[chosen[0]]) ** 2).sum(1)
    for _ in range(n - 1):
        chosen.append(int(torch.multinomial(nearest / nearest.sum(), 1, generator=generator)))
        nearest = torch.minimum(nearest, ((points - points[chosen[-1]]) ** 2).sum(1))
    return points[chosen].clone()


def em_mixture(points: torch.Tensor, n: int, seed: int = 13, max_iter: int = 500, tol: float = 1e-4,
               floor: float = 1e-6) -> Mixture:
    """Fit N diagonal Gaussians to the rows of ``points`` (float64 inside); means start at N distinct points spread
    by :func:`spread_points` (``seed``), variances at the data's per-dimension variance."""
    data = points.detach().to(torch.float64)
    distinct = torch.unique(data, dim=0)
    if len(distinct) < n:
        raise ConfigError(f"EM initialisation of {n} codes needs at least {n} distinct encodings; got {len(distinct)} "
                          "(lower model.codebook_size or train on more personas)")
    means = spread_points(distinct, n, seed)
    variances = data.var(0, unbiased=False).clamp_min(floor).expand(n, -1).clone()
    for iteration in range(1, max_iter + 1):
        new_means, variances = m_step(data, e_step(data, means, variances), floor)
        moved = torch.linalg.vector_norm(new_means - means).item()
        means = new_means
        if moved < tol:
            return Mixture(means.to(points.dtype), variances.to(points.dtype), iteration, True)
    return Mixture(means.to(points.dtype), variances.to(points.dtype), max_iter, False)


def initial_codebook(points: torch.Tensor, n: int, method: str = "em", seed: int = 13) -> torch.Tensor:
    """N codes from the training encodings: ``em`` (the mixture's means), ``sequential`` (the first N distinct
    encodings, as the batches fill unused codes), ``mean`` (every code the mean encoding) or ``random``."""
    if method not in INITS:
        raise ConfigError(f"codebook init must be one of {', '.join(INITS)}; got {method!r}")
    if method == "em":
        return em_mixture(points, n, seed).means
    if method == "sequential":
        distinct = torch.unique_consecutive(points.detach(), dim=0)
        rows = [distinct[i % len(distinct)] for i in range(n)]
        return torch.stack(rows).clone()
    if method == "mean":
        return points.detach().mean(0, keepdim=True).expand(n, -1).clone()
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, points.shape[1], generator=generator, dtype=points.dtype) * 2 - 1) / n


def nearest_codes(encodings: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Eq. 8: the index of the nearest code (Euclidean) for every encoding, [...]."""
    flat = encodings.reshape(-1, encodings.shape[-1])
    return torch.cdist(flat.to(codebook.dtype), codebook).argmin(-1).reshape(encodings.shape[:-1])


def vq_loss(encodings: torch.Tensor, codes: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    """Eq. 9: mse(sg[p], e_k) moves the codes, β · mse(sg[e_k], p) the encoder."""
    return F.mse_loss(codes, encodings.detach()) + beta * F.mse_loss(encodings, codes.detach())


def contrastive_loss(encodings: torch.Tensor, codebook: torch.Tensor, assigned: torch.Tensor, tau: float = TAU,
                     negatives: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. 14 (``negatives=None``): −log softmax_k of cos(p, e)/τ over all codes, at the assigned code. With
    ``negatives`` (the released code): the assigned code against at most that many codes no encoding of the batch
    is assigned to, drawn with ``generator``."""
    flat, index = encodings.reshape(-1, encodings.shape[-1]), assigned.reshape(-1)
    similarity = F.cosine_similarity(flat[:, None, :], codebook[None, :, :], dim=-1) / tau  # [B, N]
    if negatives is None:
        return F.cross_entropy(similarity, index)
    unused = torch.ones(len(codebook), dtype=torch.bool)
    unused[index.unique()] = False
    pool = unused.nonzero().flatten()
    chosen = pool[torch.randperm(len(pool), generator=generator)[:negatives]]
    logits = torch.cat([similarity.gather(1, index[:, None]), similarity[:, chosen]], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(flat), dtype=torch.long))


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """Mean of −(1 − p_t)^γ log p_t (Lin et al. 2017; γ = 0 is cross-entropy)."""
    log_p = F.log_softmax(logits, dim=-1).gather(-1, targets[..., None]).squeeze(-1)
    return (-(1 - log_p.exp()) ** gamma * log_p).mean()


def straight_through(encodings: torch.Tensor, codes: torch.Tensor, mode: str = "none") -> torch.Tensor:
    """What the prefix is built from during joint training (see the module docstring)."""
    if mode not in STE_MODES:
        raise ConfigError(f"model.ste must be one of {', '.join(STE_MODES)}; got {mode!r}")
    if mode == "none":
        return encodings
    if mode == "released":
        return codes + (encodings - codes).detach()
    return encodings + (codes - encodings).detach()
