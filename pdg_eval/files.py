"""Files at the bottom layer: writing outputs safely, hashing, package data and the shared-data folder.

* :func:`check_outputs` runs before any work: an output that resolves (``realpath``) to an input or to another
  output, an output that is an existing folder, and an output whose folder does not exist are refused with
  :class:`~pdg_eval.errors.ConfigError` naming the user's path.
* :func:`atomic_writer` writes one file through a temporary file in the same folder, renamed on success.
* Inside :func:`all_or_nothing`, every :func:`atomic_writer` defers its rename until the block ends without an
  exception, so a command with several outputs (``score --json --per-item``) writes all of them or none.
* :func:`file_sha256` names a file's bytes; :func:`is_installed` and :func:`package_data_dir` look at an installed
  package without importing it.
* :func:`shared_dir` / :func:`shared_path` locate the project's shared data folder (``../shared`` next to the
  checkout, or ``PDG_EVAL_SHARED``): tests and benchmarks read golden values and real data only through them.
"""


from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator

from .errors import ConfigError

#: (temporary file, final path) pairs waiting for the end of the innermost :func:`all_or_nothing` block
_PENDING: contextvars.ContextVar[list[tuple[str, Path]] | None] = contextvars.ContextVar("pending_outputs",
                                                                                          default=None)


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Iterable[str | Path | None], inputs: Iterable[str | Path | None] = (),
                  what: str = "output") -> None:
    """Refuse outputs that would overwrite an input or each other, that are folders, or whose folder is missing."""
    given_inputs = [Path(p) for p in inputs if p is not None]
    seen: list[Path] = []
    for raw in outputs:
        if raw is None:
            continue
        path = Path(raw)
        for source in given_inputs:
            if _same_file(path, source):
                raise ConfigError(f"{what} {raw} is the input {source}: refusing to overwrite it")
        for other in seen:
            if _same_file(path, other):
                raise ConfigError(f"{what} {raw} is given twice ({other}): each output needs its own file")
        if path.is_dir():
            raise ConfigError(f"{what} {raw} is a folder: give a file name")
        folder = path.parent
        if not folder.is_dir():
            raise ConfigError(f"{what} {raw}: folder {folder} does not exist (create it first)")
        seen.append(path)


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask  # mkstemp creates 0600; give the file the usual permissions


@contextlib.contextmanager
def atomic_writer(path: str | Path, parents: bool = False, mode: int | None = None, binary: bool = False
                  ) -> Iterator[IO]:
    """Write a file all-or-nothing: a temporary file in the same folder is renamed on success.

    ``parents`` creates a missing folder (for folders the program owns, e.g. ``leaderboards/runs/<board>``); a
    user's output path in a missing folder is an error. ``mode``: the file's permissions (default: the umask's).
    ``binary``: the handle takes bytes (e.g. a PNG from ``savefig``).
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise ConfigError(f"output {path}: folder {path.parent} does not exist (create it first)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    pending = _PENDING.get()
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as handle:
            yield handle
        os.chmod(tmp, _file_mode() if mode is None else mode)
        if pending is not None:
            pending.append((tmp, path))
        else:
            _rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _rename(tmp: str, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as exc:  # name the user's path, not the temporary file
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise OSError(exc.errno, exc.strerror, str(path)) from None


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Every :func:`atomic_writer` in the block is renamed into place only when the whole block succeeds."""
    pending: list[tuple[str, Path]] = []
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    finally:
        _PENDING.reset(token)
    for k, (tmp, path) in enumerate(pending):
        try:
            _rename(tmp, path)
        except OSError:
            for later, _ in pending[k + 1:]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(later)
            raise


# -- hashing and package data ---------------------------------------------------------------------------------
def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _find_spec(package: str):
    """The import spec of an installed package without importing it; None when it cannot be imported."""
    try:
        return importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None


def is_installed(package: str) -> bool:
    """Whether ``package`` can be imported (checked without importing it)."""
    return _find_spec(package) is not None


def package_data_dir(package: str, *parts: str) -> Path:
    """Folder inside an installed package, found without importing the package."""
    spec = _find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {package!r} is not installed (pip install {package.replace('_', '-')})")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


# -- the shared data folder -----------------------------------------------------------------------------------
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
