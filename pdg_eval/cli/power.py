"""``pdg-eval power``: test-set size / minimum detectable effect, and judgments for pairwise human evaluation."""

from __future__ import annotations

import argparse
import csv
import json
import math
from typing import Any

from ..errors import ConfigError, InputError
from ..files import atomic_writer, check_outputs
from .args import positive_int, probability


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "power", help="test-set size or human judgments needed to detect a difference",
        description="Power analysis. From per-item values of two systems (CSV of `pdg-eval score --per-item`), or a "
                    "known SD of per-item differences: the items a two-sided paired t-test needs to detect DELTA, and "
                    "the minimum detectable effect (MDE) at N items. From the bootstrap standard error of a "
                    "corpus-level difference on a pilot (--se): the same under se ~ 1/sqrt(n). From a win rate: the "
                    "judgments a pairwise human evaluation (Win/Tie/Lose) needs, by an exact two-sided sign test.")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--per-item", nargs=2, metavar=("A.csv", "B.csv"),
                      help="per-item CSVs of baseline A and system B (`pdg-eval score --per-item`); paired by id, "
                           "differences B - A")
    mode.add_argument("--sd", type=float, metavar="S", help="known SD of per-item differences (raw units)")
    mode.add_argument("--se", type=float, metavar="SE",
                      help="bootstrap standard error of a corpus-level difference measured on a pilot of --pilot-n items")
    mode.add_argument("--win-rate", type=float, metavar="W",
                      help="pairwise human evaluation: expected share of wins among decisive (non-tie) judgments")
    p.add_argument("--column", metavar="COL", help="with --per-item: the column to compare, e.g. bleu:nltk_sentence_avg:bleu-1")
    p.add_argument("--delta", type=float, metavar="D",
                   help="difference to detect, in the raw units of the values (0-1 for most metrics, not the x100 "
                        "shown in tables)")
    p.add_argument("--n", type=positive_int, metavar="N", help="items for the MDE (default with --per-item / --se: the pilot's)")
    p.add_argument("--pilot-n", type=positive_int, metavar="N", help="with --se: items of the pilot that gave the standard error")
    p.add_argument("--tie-rate", type=float, default=0.0, metavar="T",
                   help="with --win-rate: expected share of ties among all judgments (default 0)")
    p.add_argument("--max-n", type=positive_int, default=100000, help="with --win-rate: largest number of judgments searched")
    p.add_argument("--alpha", type=probability, default=0.05, help="significance level, two-sided (default 0.05)")
    p.add_argument("--power", type=probability, default=0.8, help="target power (default 0.8)")
    p.add_argument("--json", dest="json_out", metavar="FILE", help="write the result as JSON")
    p.set_defaults(func=run)


def _read_column(path: str, column: str | None) -> tuple[dict[str, float | None], dict[str, int], list[str]]:
    """Values of ``column`` by id (None where empty or not finite), the line of each id, and the columns."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or header[0] != "id":
            raise InputError(path, 1, None, "not a per-item CSV of `pdg-eval score --per-item` (no 'id' header)")
        available = header[1:]
        if column is None:
            raise ConfigError(f"--per-item needs --column; available columns: {', '.join(available) or '(none)'}")
        if column not in available:
            raise InputError(path, 1, column, f"unknown column; available: {', '.join(available) or '(none)'}")
        index = header.index(column)
        values: dict[str, float | None] = {}
        lines: dict[str, int] = {}
        for row in reader:
            if not row:
                continue
            item_id = row[0]
            if item_id in values:
                raise InputError(path, reader.line_num, "id", f"duplicate id {item_id!r} (first on line {lines[item_id]})")
            cell = row[index].strip() if index < len(row) else ""
            try:
                value = float(cell) if cell else None
            except ValueError:
                raise InputError(path, reader.line_num, column, f"not a number: {cell!r}") from None
            values[item_id] = value if value is not None and math.isfinite(value) else None
            lines[item_id] = reader.line_num
    return values, lines, available


def _pair(path_a: str, path_b: str, column: str | None) -> tuple[list[float], int]:
    """Differences B - A paired by id, and the number of items skipped for a missing value."""
    a, lines_a, _ = _read_column(path_a, column)
    b, lines_b, _ = _read_column(path_b, column)
    for item_id in a:
        if item_id not in b:
            raise InputError(path_a, lines_a[item_id], "id", f"id {item_id!r} is not in {path_b}; "
                                                             "both files must score the same items")
    for item_id in b:
        if item_id not in a:
            raise InputError(path_b, lines_b[item_id], "id", f"id {item_id!r} is not in {path_a}; "
                                                             "both files must score the same items")
    diffs, skipped = [], 0
    for item_id, va in a.items():
        vb = b[item_id]
        if va is None or vb is None:
            skipped += 1
        else:
            diffs.append(vb - va)
    return diffs, skipped


def _paired(args: argparse.Namespace, sd: float, n_pilot: int | None) -> dict[str, Any]:
    from ..power import minimum_detectable_effect, paired_sample_size  # scipy/statsmodels: only when run

    out: dict[str, Any] = {"test": "paired t-test, two-sided", "sd_diff": sd}
    if args.delta is not None:
        out["delta"] = args.delta
        out["n_needed"] = paired_sample_size(sd, args.delta, args.alpha, args.power)
    n = args.n if args.n is not None else n_pilot
    if n is not None:
        out["mde_n"] = n
        out["mde"] = minimum_detectable_effect(sd, n, args.alpha, args.power)
    if args.delta is None and n is None:
        raise ConfigError("give --delta (items needed) and/or --n (minimum detectable effect)")
    return out


def _compute(args: argparse.Namespace) -> dict[str, Any]:
    from ..power import corpus_mde, corpus_sample_size, pairwise_judgments, pilot_from_differences

    levels = {"alpha": args.alpha, "power": args.power}
    if args.win_rate is not None:
        res = pairwise_judgments(args.win_rate, args.tie_rate, args.alpha, args.power, args.max_n)
        return {"mode": "pairwise", **levels, "test": "exact binomial sign test, two-sided",
                "win_rate": args.win_rate, "tie_rate": args.tie_rate, **res}
    if args.per_item:
        diffs, skipped = _pair(*args.per_item, args.column)
        n, mean, sd = pilot_from_differences(diffs)
        return {"mode": "per-item", **levels, "a": args.per_item[0], "b": args.per_item[1], "column": args.column,
                "n_items": n, "skipped": skipped, "mean_diff": mean, **_paired(args, sd, n)}
    if args.sd is not None:
        return {"mode": "sd", **levels, **_paired(args, args.sd, None)}
    if args.pilot_n is None:
        raise ConfigError("--se needs --pilot-n, the number of items of the pilot it was measured on")
    out: dict[str, Any] = {"mode": "corpus", **levels, "test": "normal approximation, se ~ 1/sqrt(n)",
                           "se_pilot": args.se, "pilot_n": args.pilot_n}
    if args.delta is not None:
        out["delta"] = args.delta
        out["n_needed"] = corpus_sample_size(args.se, args.pilot_n, args.delta, args.alpha, args.power)
    out["mde_n"] = args.n if args.n is not None else args.pilot_n
    out["mde"] = corpus_mde(args.se, args.pilot_n, out["mde_n"], args.alpha, args.power)
    return out


def format_result(res: dict[str, Any]) -> str:
    lines = [f"{res['test']}, alpha {res['alpha']:g}, power {res['power']:g}"]
    if res["mode"] == "pairwise":
        lines += [f"  win rate among decisive judgments: {res['win_rate']:g}, tie rate {res['tie_rate']:g}",
                  f"  decisive judgments needed: {res['decisive']} (power {res['achieved_power']:.3f}; "
                  f"stays >= {res['power']:g} up to +20)",
                  f"  judgments needed including ties: {res['total']}"]
        return "\n".join(lines) + "\n"
    if res["mode"] == "per-item":
        lines.append(f"  {res['column']}: differences B - A ({res['b']} - {res['a']}), raw units")
        skipped = f" ({res['skipped']} skipped: no value)" if res["skipped"] else ""
        lines += [f"  items: {res['n_items']}{skipped}", f"  mean difference: {res['mean_diff']:.4g}"]
    if "sd_diff" in res:
        lines.append(f"  sd of differences: {res['sd_diff']:.4g}")
    else:
        lines.append(f"  pilot standard error: {res['se_pilot']:.4g} on {res['pilot_n']} items")
    if "n_needed" in res:
        lines.append(f"  items needed to detect delta {res['delta']:g}: {res['n_needed']}")
    if "mde" in res:
        lines.append(f"  minimum detectable effect at n={res['mde_n']}: {res['mde']:.4g}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    check_outputs([args.json_out], args.per_item or [])
    res = _compute(args)
    if args.json_out:
        with atomic_writer(args.json_out) as handle:
            json.dump(res, handle, indent=2)
            handle.write("\n")
    print(format_result(res), end="")
    return 0
