"""``attention_routing`` — the Attention-Routing baseline of PAA (Zheng et al., AAAI 2020, as re-implemented in PAA's
appendix and code, ``hqsiswiliam/persona-adaptive-attention@2539c5c``): PAA's two encoders and dual cross-attention decoder, but the two
cross-attention results are mixed with a fixed weight, h' = h + α·o_p + (1 − α)·o_c + o_c, through one shared
cross-attention module. α = 0.2 (PAA's grid search; its code uses 0.1 — ``--set model.alpha=0.1``). Zheng et al.'s
α predictor was never released. Architecture: :mod:`pdg_eval_methods.paa.model`."""

from __future__ import annotations

from dataclasses import dataclass

from pdg_eval.errors import ConfigError

from pdg_eval_methods.common.method import register
from pdg_eval_methods.paa.method import DualAttentionMethod, DualAttentionOptions


@dataclass
class RoutingOptions(DualAttentionOptions):
    fusion: str = "routing"
    alpha: float = 0.2
    shared_cross_attention: bool = True


@register("attention_routing")
class AttentionRouting(DualAttentionMethod):
    description = "PAA's Attention-Routing baseline: fixed-weight routing of persona/context cross-attention"
    Options = RoutingOptions

    def __init__(self, config):
        super().__init__(config)
        if self.options.fusion != "routing":
            raise ConfigError("attention_routing uses fusion 'routing'; for PAA's fusion run the paa method")
