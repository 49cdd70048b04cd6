"""argparse ``type=`` helpers for numeric options: a value out of range ends as argparse's one-line usage error
(exit 2), e.g. ``argument --resamples: expected an integer >= 1, got '-1'``."""

from __future__ import annotations

import argparse
from typing import Callable, TypeVar

from ..values import read_float, read_int

T = TypeVar("T")


def _argument_type(name: str, read: Callable[[str], T]) -> Callable[[str], T]:
    """``read`` with its ValueError turned into argparse's error; ``name`` is what argparse calls the type."""
    def parse(text: str) -> T:
        try:
            return read(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


positive_int = _argument_type("positive_int", lambda text: read_int(text, low=1))
non_negative_int = _argument_type("non_negative_int", lambda text: read_int(text, low=0))
#: TCP port of a server to listen on
port = _argument_type("port", lambda text: read_int(text, low=1, high=65535))
positive_float = _argument_type("positive_float", lambda text: read_float(text, low=0, open_interval=True))
#: a probability strictly between 0 and 1 (significance level, target power)
probability = _argument_type("probability", lambda text: read_float(text, low=0, high=1, open_interval=True))


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """One option per model slot (``--nli-model``, ``--cohcon-model``): the scorers behind the model metrics (default:
    the ones shipped with pdg-eval)."""
    from ..scoring import MODEL_SLOTS

    for slot in MODEL_SLOTS.values():
        parser.add_argument(slot.option, metavar=slot.metavar, help=slot.help % slot.default)


def slot_models(args: argparse.Namespace) -> dict[str, str | None]:
    """The models given for each slot (``{"nli": ..., "cohcon": ...}``; None: the shipped scorer)."""
    from ..scoring import MODEL_SLOTS

    return {slot.tag: getattr(args, slot.dest, None) for slot in MODEL_SLOTS.values()}
