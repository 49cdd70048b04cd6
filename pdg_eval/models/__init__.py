"""Model runtime for model-based metrics: loading, batching, devices, weights hashes, score cache."""
