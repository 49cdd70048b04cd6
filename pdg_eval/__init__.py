"""pdg-eval: evaluation toolkit for Personalized Dialogue Generation (PDG).

Every metric turns one record into sufficient statistics, aggregates them and reports a
signature, following sacreBLEU's design (Post, 2018).
"""

__version__ = "0.1.0"

#: the Python API (:mod:`pdg_eval.api`), imported on first use so that ``import pdg_eval`` stays light
_API = ("score", "compare_systems", "Scores", "ComparisonResult", "EVALUATE_MODULE")


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'pdg_eval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
