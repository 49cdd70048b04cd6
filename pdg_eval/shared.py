"""Locate the project's shared data folder (``../shared`` next to the checkout).

Tests and benchmarks read golden values and real data only through :func:`shared_dir`.
Set ``PDG_EVAL_SHARED`` to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "PDG_EVAL_SHARED"


def shared_dir() -> Path | None:
    """Return the shared folder, or None when it cannot be found."""
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    repo_root = Path(__file__).resolve().parent.parent
    for candidate in (repo_root.parent / "shared", Path.cwd().parent / "shared", Path.cwd() / "shared"):
        if (candidate / "golden").is_dir() or (candidate / "data").is_dir():
            return candidate
    return None


def shared_path(*parts: str) -> Path:
    """Path below the shared folder; raises FileNotFoundError with a hint when it is missing."""
    root = shared_dir()
    if root is None:
        raise FileNotFoundError(f"shared data folder not found: set {ENV_VAR} to the folder holding golden/ and data/")
    path = root.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(path)
    return path
