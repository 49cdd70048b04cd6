"""The architecture's contracts: the layering of ``pdg_eval`` and the core never importing the methods (import-linter,
``[tool.importlinter]`` in pyproject.toml); metrics, methods and subcommands added by another installed package
through entry points."""

from __future__ import annotations

import sys
import textwrap

import pytest


def test_import_contracts_are_kept(capsys):
    from importlinter.cli import lint_imports

    assert lint_imports() == 0, capsys.readouterr().out


@pytest.fixture()
def third_party_package(tmp_path, monkeypatch):
    """An installed distribution ``pdg-eval-extra`` declaring a metric module under ``pdg_eval.metrics``."""
    (tmp_path / "extra_metrics.py").write_text(textwrap.dedent('''
        from pdg_eval.metrics.base import ItemScore, register_metric

        @register_metric("length", "tokens", default=True)
        class TokenLength(ItemScore):
            description = "number of whitespace tokens of the response"
            source = "a third-party package"
            display_factor = 1.0
            keys = ["length"]

            def scored_against(self):
                return ()

            def item_stats(self, record):
                return len(self.tok(record.response))
    '''), encoding="utf-8")
    info = tmp_path / "pdg_eval_extra-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pdg-eval-extra\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[pdg_eval.metrics]\nlength = extra_metrics\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    from pdg_eval.metrics.base import METRICS

    METRICS.pop("length", None)
    sys.modules.pop("extra_metrics", None)


def test_a_metric_from_another_package_is_registered_through_its_entry_point(third_party_package):
    from pdg_eval.metrics import load_all
    from pdg_eval.metrics.base import METRICS, build_metric
    from pdg_eval.records import Record

    assert "length" not in METRICS
    load_all.__wrapped__()  # what a fresh process does once
    metric = build_metric("length")
    stats = [metric.item_stats(Record(id=str(i), response=text, references=["x"]))
             for i, text in enumerate(["a b c", "d"])]
    assert metric.aggregate(stats) == {"length": 2.0}
    assert str(metric.signature()).startswith("length:tokens|tok:whitespace|scale:x1|")


def test_the_run_subcommand_comes_from_the_methods_entry_point():
    from pdg_eval.cli.main import build_parser
    from pdg_eval.plugins import plugins

    assert [p.value for p in plugins("pdg_eval.commands")] == ["pdg_eval_methods.common.cli:add_parser"]
    assert {p.name for p in plugins("pdg_eval.methods")} >= {"paa", "pal", "idl", "morpheus", "causal_lm"}
    assert build_parser().parse_args(["run", "list"]).method == "list"
