"""Metric implementations; importing :func:`load_all` registers every metric."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache


@lru_cache(maxsize=None)
def load_all() -> None:
    """Import every module of this package, and every module other packages declare under the ``pdg_eval.metrics``
    entry point, so that their ``@register_metric`` decorators run."""
    from ..plugins import load_plugins

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    load_plugins("pdg_eval.metrics")
