"""Human evaluation: study definitions, the annotation store, and the analysis of judgments.

The three protocols of the seed papers are built in: IDL's pairwise Win/Tie/Lose, MORPHEUS' ranking of responses
with the ground-truth anchor, and PAA's Likert ratings. Judgments travel between the store, importers and the
analysis as the long tables of :mod:`pdg_eval.annotate.frames`.
"""
