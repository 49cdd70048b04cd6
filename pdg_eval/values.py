"""Numbers read from text (metric options, command-line values): each reader returns the value or raises
``ValueError`` saying what is allowed; callers turn that into their own error (ConfigError, argparse)."""

from __future__ import annotations

import math


def read_int(text: str, low: int | None = None, high: int | None = None) -> int:
    """An integer in ``[low, high]`` (a missing bound: unbounded)."""
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"expected {_int_range(low, high)}, got {text!r}")
    return value


def read_float(text: str, low: float | None = None, high: float | None = None, open_interval: bool = False) -> float:
    """A finite number in ``[low, high]``, or in ``(low, high)`` with ``open_interval``."""
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    below = low is not None and (value <= low if open_interval else value < low)
    above = high is not None and (value >= high if open_interval else value > high)
    if not math.isfinite(value) or below or above:
        raise ValueError(f"expected {_float_range(low, high, open_interval)}, got {text!r}")
    return value


def _int_range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"an integer from {low} to {high}"
    if low is not None:
        return f"an integer >= {low}"
    return "an integer" if high is None else f"an integer <= {high}"


def _float_range(low: float | None, high: float | None, open_interval: bool) -> str:
    if low is not None and high is not None:
        return f"a number in {'(' if open_interval else '['}{low:g}, {high:g}{')' if open_interval else ']'}"
    if low is not None:
        return f"a number {'>' if open_interval else '>='} {low:g}"
    return "a number" if high is None else f"a number {'<' if open_interval else '<='} {high:g}"
