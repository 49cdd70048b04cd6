"""pdg-eval for Hugging Face ``evaluate``: every published persona-dialogue metric convention, named and signed.

    import evaluate, pdg_eval
    metric = evaluate.load(pdg_eval.EVALUATE_MODULE, config_name="pdg")          # a preset, or "default"
    metric.compute(predictions=[...], references=[[...], ...], personas=[[...], ...], contexts=[[...], ...])

Returns ``{"metric:variant:key": value, ..., "signatures": {"metric:variant:key": signature}}``: the values
``pdg-eval score`` prints (percentages where the papers print them), and what each was computed with. ``metrics=[...]``
(spec strings, as ``-m``) adds to or, with ``config_name="default"``, replaces the preset. References may be one
string per prediction or a list; personas and contexts are lists of sentences per prediction (persona metrics are
skipped without them, and named under ``skipped``).
"""

from __future__ import annotations

import datasets
import evaluate

import pdg_eval
from pdg_eval.presets import PRESETS

_CITATION = """@misc{pdg-eval,
  title = {pdg-eval: evaluation and benchmarking toolkit for personalized dialogue generation},
  note = {https://pypi.org/project/pdg-eval/}
}"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated responses (str).
    references: list of gold responses (str, or list of str per prediction).
    personas: optional list of persona sentence lists, one per prediction.
    contexts: optional list of dialogue-history lists (oldest first), one per prediction.
    metrics: optional list of pdg-eval metric specs (e.g. "bleu:sacrebleu", "distinct:corpus,n=3").
    tokenizer: optional tokenizer name overriding every metric's (e.g. "jieba" for Chinese).
Returns:
    one value per metric key, and "signatures" (and "skipped" where a metric could not run).
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS_DESCRIPTION)
class PdgEval(evaluate.Metric):
    BUILDER_CONFIG_NAMES = ("default", *PRESETS)

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__, citation=_CITATION, inputs_description=_KWARGS_DESCRIPTION,
            features=[datasets.Features({"predictions": datasets.Value("string"),
                                         "references": datasets.Sequence(datasets.Value("string"))}),
                      datasets.Features({"predictions": datasets.Value("string"),
                                         "references": datasets.Value("string")})],
            reference_urls=["https://pypi.org/project/pdg-eval/"])

    def _compute(self, predictions, references, personas=None, contexts=None, metrics=(), tokenizer=None):
        n = len(predictions)
        for name, given in (("personas", personas), ("contexts", contexts)):
            if given is not None and len(given) != n:
                raise ValueError(f"{name}: {len(given)} entries for {n} predictions")
        records = [{"id": str(i), "response": prediction,
                    "reference": reference if isinstance(reference, str) else list(reference),
                    "persona": list(personas[i]) if personas is not None else [],
                    "context": list(contexts[i]) if contexts is not None else []}
                   for i, (prediction, reference) in enumerate(zip(predictions, references))]
        preset = None if self.config_name == "default" else self.config_name
        scores = pdg_eval.score(records, preset, list(metrics), tokenizer=tokenizer)
        out = {**scores.values, "signatures": scores.signatures}
        if scores.skipped:
            out["skipped"] = scores.skipped
        return out
