"""The shared harness: dataset loaders, backbones, training, preference losses, generation and run provenance."""
