"""The baselines the seed papers compare against, each trainable and generating through :mod:`methods.common`."""
