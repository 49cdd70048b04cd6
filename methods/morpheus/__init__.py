"""MORPHEUS — role modelling with a persona codebook (Tang et al., EMNLP 2024; code: the authors' release).

:mod:`.codebook` holds the codebook's initialisations (EM, sequential, mean, random), the nearest-code assignment and
the VQ, contrastive and code-prediction losses with the straight-through modes.
"""
