"""The baselines the seed papers compare against, each trainable and generating through :mod:`pdg_eval_methods.common`."""
