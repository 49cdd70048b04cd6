"""Faithful implementations of the PDG methods pdg-eval ranks (PAL, IDL, PAA, MORPHEUS), over one shared harness
(:mod:`pdg_eval_methods.common`). Every method trains and generates through ``pdg-eval run METHOD train|generate``."""
