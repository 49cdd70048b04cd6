"""PAA — Persona-Adaptive Attention (Huang et al., AAAI 2023): ``model.py`` holds the dual-encoder,
dual-cross-attention decoder and its fusion rules."""
