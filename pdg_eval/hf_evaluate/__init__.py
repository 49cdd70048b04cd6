"""pdg-eval as a Hugging Face ``evaluate`` module: ``evaluate.load(pdg_eval.api.EVALUATE_MODULE, config_name=PRESET)``.

The module file is loaded by ``evaluate`` (which copies it into its module cache), not imported by pdg-eval.
"""
