"""pdg-eval: evaluation toolkit for Personalized Dialogue Generation (PDG).

Every metric turns one record into sufficient statistics, aggregates them and reports a
signature, following sacreBLEU's design (Post, 2018).
"""

__version__ = "0.1.0"
