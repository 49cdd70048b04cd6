"""PAL — Persona-Aware Alignment framework (Li, Liu, Wu, Dai, TACL 13:1722–1742, 2025; kylokano/PAL@cc8b8b5).

Stage 1 (persona-aware learning) trains one *select* and one *generate* example per turn; stage 2 (persona
alignment) runs sigmoid DPO with the gold reply as chosen and the stage-1 model's history-only reply as rejected;
inference selects a persona sentence, then generates with it highlighted. :mod:`.prompts` holds the prompts,
:mod:`.labels` the per-turn persona labels the release never shipped a script for, and the parse of a selection;
:mod:`.method` registers ``pal`` on the shared harness.

Where this implementation departs from the paper or the release, and why:

* **Persona labels** (never released): rebuilt per turn from the shipped NLI scorer (P(entail) ≥ 0.5), MiniLM cosine
  or content-word overlap, thresholds of the last two calibrated on RCDG's nli-valid pairs; at most one per turn.
* **Select-then-generate highlights the parsed selection**: the release's inference script fills the highlighted slot
  with the gold persona label (a leak of the reference); ``model.strategy: gold`` keeps that setting as an oracle.
* **DPO split**: the DPO pairs come from training dialogues that stage 1 never saw (``dpo_fraction``, by dialogue);
  the release builds them from the stage-1 training data.
* **Speaker tags** follow the position of each turn; the release tags the next speaker person2 whatever the history
  length. Chinese prompts mirror the English ones (the release's Chinese path has unfilled slots; see :mod:`.prompts`).
* **Stage 2 is plain sigmoid DPO** (no SFT term), reference = the frozen stage-1 model, dropout off, as the release's
  trainer; one pair per turn, a negative identical to the gold dropped.
* **Backbone and budget**: the release fine-tunes GPT-2 (10 epochs) or LoRA-tunes Llama-3.1-8B; pdg-eval's CPU
  configuration (``configs/pal_smollm2.yaml``) fully fine-tunes SmolLM2-135M-Instruct for one epoch on 80 dialogues.
"""
