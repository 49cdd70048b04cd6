"""PAL — Persona-Aware Alignment framework (Li, Liu, Wu, Dai, TACL 13:1722–1742, 2025; kylokano/PAL@cc8b8b5).

Stage 1 (persona-aware learning) trains one *select* and one *generate* example per turn; stage 2 (persona
alignment) runs sigmoid DPO with the gold reply as chosen and the stage-1 model's history-only reply as rejected;
inference selects a persona sentence, then generates with it highlighted. :mod:`.prompts` holds the prompts,
:mod:`.labels` the per-turn persona labels the release never shipped a script for, and the parse of a selection.
"""
