"""Shared fixtures: the golden vectors and real data come from ../shared (see pdg_eval.files)."""

from __future__ import annotations

import json

import pytest

from pdg_eval.records import Record, record_from_dict
from pdg_eval.files import shared_dir


def shared_or_skip(*parts: str):
    root = shared_dir()
    if root is None or not root.joinpath(*parts).exists():
        pytest.skip(f"shared data not available: {'/'.join(parts)}")
    return root.joinpath(*parts)


@pytest.fixture(scope="session")
def golden() -> dict:
    return json.loads(shared_or_skip("golden", "golden_vectors.json").read_text("utf-8"))


@pytest.fixture(scope="session")
def golden_inputs() -> dict:
    return json.loads(shared_or_skip("golden", "golden_inputs.json").read_text("utf-8"))


@pytest.fixture(scope="session")
def golden_records(golden_inputs) -> list[Record]:
    return [record_from_dict({"id": e["id"], "persona": e["persona"], "context": e["context"],
                              "response": e["prediction"], "reference": e["reference"]})
            for e in golden_inputs["examples"]]


@pytest.fixture(scope="session")
def convai2_valid():
    return shared_or_skip("data", "convai2", "valid_self_original.txt")


@pytest.fixture(scope="session", autouse=True)
def isolated_model_cache(tmp_path_factory):
    """Tokenizers and converted models go to ``$PDG_EVAL_TEST_MODELS`` (reused between runs) or a per-session
    folder, never to the user's ``~/.cache``."""
    import os

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PDG_EVAL_MODELS", os.environ.get("PDG_EVAL_TEST_MODELS") or str(tmp_path_factory.mktemp("models")))
        yield


@pytest.fixture(scope="session", autouse=True)
def isolated_score_cache(tmp_path_factory):
    """Model-score caches of the test run go to a temporary folder, never to ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PDG_EVAL_CACHE", str(tmp_path_factory.mktemp("cache") / "scores.sqlite"))
        yield
