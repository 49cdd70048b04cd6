"""Errors that carry the location of bad input, printed as ``file:line: field: problem``."""

from __future__ import annotations


class PdgEvalError(Exception):
    """Base class for errors reported to the user without a traceback (exit code 2)."""


class InputError(PdgEvalError):
    """A problem in an input file, located by file and 1-based line number."""

    def __init__(self, path: str, line: int | None, field: str | None, problem: str):
        self.path, self.line, self.field, self.problem = str(path), line, field, problem
        super().__init__(self.format())

    def format(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.field}: {self.problem}" if self.field else f"{where}: {self.problem}"


class ConfigError(PdgEvalError):
    """A bad metric, preset or option name given by the user."""


class UnsuitableModelError(ConfigError):
    """A model that cannot run the requested variant (e.g. an NLI scorer trained on the other premise order); a
    preset entry that fills in the model skips that variant with this reason instead of aborting."""
