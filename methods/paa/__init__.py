"""PAA — Persona-Adaptive Attention (Huang, Wang, Dong, Liu & Zhao; AAAI 2023).

``model.py`` is the network (two encoders, the decoder's dual cross-attention and the fusion rules, Listing 1 of the
paper read top to bottom), ``method.py`` its inputs, training and generation through the shared harness (registered as
``paa``; ``attention_routing`` in ``baselines/`` is the same network with the routing rule), ``data_efficiency.py``
the experiment of the paper's Figure 3.

Where the paper, its pseudo-code and the authors' code (``hqsiswiliam/persona-adaptive-attention@2539c5c``) disagree, and what this implementation follows:

=====================================  ===========================  =========================  =====================
point                                  paper                        authors' code              here
=====================================  ===========================  =========================  =====================
masks                                  Eq. 6: 1[w > τ], 1[1−w > τ]  same as Eq. 6              Eq. 6 (Listing 1 line
                                                                                               23–24 inverts them)
τ numerator                            context (Eq. 6, Listing 1)   README command: persona    context; persona via
                                                                                               ``model.tau_numerator``
τ counted in                           input lengths                non-pad encoder tokens     non-pad encoder tokens
learning rate / batch                  8e-6 / 32                    1e-6 / 8                   paper (the method's
                                                                                               default config)
optimiser, clip, epochs                Adam, 0.1, 30                Adam, 0.1, 30              AdamW with weight
                                                                                               decay 0 (= Adam), 0.1
decoder input                          persona + [BOS] + response   same                       same
context                                dialogue context             last 9 turns, Q:/R: roles  code (9 turns, roles)
special tokens                         [BOS], [EOS]                 8 added tokens             the tokenizer's end of
                                                                                               text as [BOS]/[EOS]
Hits@1 head                            binary CE on the last token  2-way CE on an appended    paper (one logit, BCE),
                                       (one extra epoch)            [CLS], 2 distractors       code's 2 distractors
Hits@1 stage loss                      Eq. 9 (BCE); the LM loss     2-way CE + LM loss on the  BCE + LM loss on the
                                       is not mentioned             gold rows only             gold rows (code)
context separator                      –                            `` [SEP] `` (added token)  ``\n``: no token added
                                                                                               to the vocabulary (as
                                                                                               [BOS]/[EOS]); Q:/R:
                                                                                               mark the turns
punctuation                            –                            `` . `` `` , `` `` ? ``    texts as in the data
                                                                    spaced in every text       (no ConvAI2 valid turn
                                                                                               changes, every persona
                                                                                               set does: ``year.``);
                                                                                               the code's spacing via
                                                                                               ``punctuation_spacing``
cross-attention dropout                –                            GPT-2's: weights 0.1,      same (``dropout``)
                                                                    output 0.1
data-efficiency grid                   10 % … 90 %, five seeds      –                          the paper's grid;
                                                                                               ``--seeds`` (one by
                                                                                               default)
Attention-Routing α                    0.2                          0.1                        paper (``alpha``)
PPL                                    exp(mean token NLL)          same, zero-loss tokens     pdg-eval ``ppl:paa``
                                                                    dropped
F1                                     "word-level" F1              macro-F1 over token ids    pdg-eval's metrics
                                                                                               (F1 needs no logits)
=====================================  ===========================  =========================  =====================

Backbones: the paper's GPT-2 small (hub ``gpt2`` online; ``random:gpt2`` offline, as no GPT-2 weights install
offline) and, with the same hooks, any LLaMA-family decoder such as the offline SmolLM2-135M (``smollm2``).
"""
