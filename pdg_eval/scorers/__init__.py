"""pdg-eval's own consistency scorers, trained by recorded recipes (the papers' checkpoints were never released)."""
