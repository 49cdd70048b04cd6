"""Start-up: ``pdg-eval --help`` and ``pdg-eval score`` import the heavy libraries only when a requested metric needs
them (``cli/power.py`` importing scipy.stats and statsmodels eagerly was 0.86 s of every command). A functional test
of what is imported, in a fresh interpreter; ``benchmarks/bench_startup.py`` measures the time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pdg_eval

HEAVY = {"scipy", "statsmodels", "torch", "streamlit", "pandas", "matplotlib", "transformers"}
EXAMPLE = str(Path(pdg_eval.__file__).parent / "examples" / "persona_chat_example.jsonl")
#: metrics of the example that need no NLTK: `import nltk` imports scipy.stats and, through scikit-learn, pandas
NO_NLTK = ["-m", "f1", "-m", "hits@1", "-m", "ppl", "-m", "bleu:sacrebleu", "-m", "distinct:corpus,tok=whitespace"]

RUN_MAIN = """
import json, sys
from pdg_eval.cli.main import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    code = exc.code
with open(sys.argv[2], "w") as handle:
    json.dump({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}, handle)
"""


def run_main(argv: list[str], tmp_path: Path) -> tuple[int, set[str]]:
    """Exit code of ``main(argv)`` in a fresh interpreter and the top-level packages it had imported."""
    result = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", RUN_MAIN, json.dumps(argv), str(result)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    doc = json.loads(result.read_text("utf-8"))
    return doc["code"], set(doc["modules"])


@pytest.mark.parametrize("argv", [["--help"], ["score", EXAMPLE, "-q", *NO_NLTK]], ids=["help", "score-no-nltk"])
def test_no_heavy_imports(argv, tmp_path):
    code, modules = run_main(argv, tmp_path)
    assert code == 0
    assert "pdg_eval" in modules and not modules & HEAVY, sorted(modules & HEAVY)


def test_a_preset_without_model_metrics_imports_no_model_libraries(tmp_path):
    """`paa` has no model-based metric (the `pdg` preset runs the shipped NLI and Con/Coh-Con scorers, which need
    torch); scoring with it must not import torch or transformers although those metrics are registered."""
    code, modules = run_main(["score", EXAMPLE, "-q", "--preset", "paa"], tmp_path)
    assert code == 0
    assert not modules & {"torch", "transformers", "peft"}, sorted(modules & HEAVY)
