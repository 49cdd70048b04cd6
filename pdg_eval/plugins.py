"""Extension points: what installed packages add to pdg-eval through entry points (``pyproject.toml``).

- ``pdg_eval.metrics``: modules that register metric conventions (``@register_metric``) when imported;
- ``pdg_eval.methods``: modules that register methods or baselines (``pdg_eval_methods.common.method.register``);
- ``pdg_eval.commands``: functions ``add_parser(subparsers)`` adding a ``pdg-eval`` subcommand (``run``).

A third-party package declares the same groups in its own metadata; nothing in pdg-eval lists them by hand.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

def plugins(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` across installed packages, by name (duplicates of one value kept once)."""
    seen: dict[str, EntryPoint] = {}
    for point in entry_points(group=group):
        seen.setdefault(point.value, point)
    return sorted(seen.values(), key=lambda p: (p.name, p.value))


def load_plugins(group: str) -> list[Any]:
    """Import every entry point of ``group`` and return what each names (a module or an object)."""
    return [point.load() for point in plugins(group)]
