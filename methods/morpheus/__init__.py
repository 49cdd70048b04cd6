"""MORPHEUS — role modelling with a persona codebook (Tang et al., EMNLP 2024; code: the authors' release).

:mod:`.codebook` holds the codebook's initialisations (EM, sequential, mean, random), the nearest-code assignment and
the VQ, contrastive and code-prediction losses with the straight-through modes; :mod:`.model` the model (the LM as
its own persona encoder, codebook, prefix network, code predictor; the role-awareness and joint losses; persona-free
prediction).
"""
