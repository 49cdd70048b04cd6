"""``pdg-eval annotate``: human evaluation studies — templates, create, serve, export, import, report."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from ..errors import ConfigError
from .args import add_model_options, non_negative_int, port, slot_models
from ..files import all_or_nothing, atomic_writer, check_outputs

DEFAULT_PORT = 8501
LINKS = "links.csv"  # the annotators' links (they hold the tokens)
PASSWORD = "admin-password.txt"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("annotate", help="human evaluation: build a study, serve the annotation app, analyse",
                              description="Human evaluation studies: pairwise (IDL), ranking (MORPHEUS) and Likert (PAA).")
    sub = p.add_subparsers(dest="annotate_command", required=True)

    t = sub.add_parser("templates", help="list the ready study templates, or print one")
    t.add_argument("name", nargs="?", help="print this template (a study file to copy and edit)")
    t.set_defaults(func=_templates)

    c = sub.add_parser("create", help="build a study folder (SQLite store, links) from a study file")
    c.add_argument("study", help="study definition (YAML or JSON)")
    c.add_argument("--out", required=True, metavar="DIR", help="study folder to create")
    c.add_argument("--url", default=f"http://localhost:{DEFAULT_PORT}", help="base URL printed in the links")
    c.add_argument("--admin-password-env", metavar="VAR",
                   help="take the admin password from this environment variable (default: generate one)")
    c.add_argument("--force", action="store_true", help="replace an existing study (its judgments are discarded)")
    c.set_defaults(func=_create)

    s = sub.add_parser("serve", help="start the annotation app on a study folder (Streamlit)")
    s.add_argument("study_dir", metavar="DIR")
    s.add_argument("--port", type=port, default=DEFAULT_PORT)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    s.set_defaults(func=_serve)

    e = sub.add_parser("export", help="write the stored judgments as CSV (long table) or JSONL (full rows)")
    e.add_argument("study_dir", metavar="DIR")
    e.add_argument("--out", required=True, metavar="FILE",
                   help="output file; .csv (plus FILE.revisions.csv: every revision of every answer) or .jsonl "
                        "(each judgment with its revision history)")
    e.add_argument("--no-checks", action="store_true", help="leave the attention-check judgments out")
    e.set_defaults(func=_export)

    i = sub.add_parser("import", help="convert published human judgments into pdg-eval's judgment tables")
    i.add_argument("source", help="the format of the judgments: usr-personachat (a file) or grade-convai2 (GRADE's "
                                  "evaluation folder)")
    i.add_argument("path", help="the file or folder to import")
    i.add_argument("--dataset", metavar="FILE", help="grade-convai2: the ConvAI2 ParlAI both-persona file "
                                                     "(valid_both_original_no_cands.txt) that supplies the personas")
    i.add_argument("--out", required=True, metavar="DIR", help="folder for judgments_<task>.csv and records.jsonl")
    i.add_argument("--force", action="store_true", help="replace an earlier import in that folder")
    i.set_defaults(func=_import)

    r = sub.add_parser("report", help="analyse judgments: win rates, rankings, Likert, Bradley-Terry, agreement, "
                                      "position bias, metric-vs-human correlation; markdown + PNG plots")
    r.add_argument("source", help="a study folder, or a folder written by `pdg-eval annotate import`")
    r.add_argument("--out", required=True, metavar="DIR", help="report folder (report.md and PNGs)")
    r.add_argument("--gold", help="ranking: the ground-truth system (default: 'Ground truth' when present)")
    r.add_argument("--level", action="append", default=[], metavar="ASPECT=LEVEL",
                   help="Krippendorff level of measurement per aspect (nominal, ordinal, interval, ratio)")
    r.add_argument("--records", metavar="FILE",
                   help="pdg-eval records of the judged responses (with 'system', and the judged item as the id or "
                        "meta.item): adds metric-vs-human correlation (default: records.jsonl of an imported "
                        "folder, or a study's own prediction files when unchanged)")
    r.add_argument("--preset", help="metrics for the correlation (default: pdg when no --metric is given)")
    r.add_argument("--metric", "-m", action="append", default=[], metavar="NAME[:VARIANT][,key=value...]",
                   help="add a metric to the correlation, e.g. p-f1:msp,stopwords=sklearn (repeatable)")
    add_model_options(r)
    r.add_argument("--exclude-system", action="append", default=[], metavar="NAME",
                   help="leave a system out of the correlation (e.g. the one the references come from)")
    r.add_argument("--resamples", type=non_negative_int, default=1000, help="bootstrap resamples for CIs (default 1000)")
    r.add_argument("--seed", type=non_negative_int, default=12345)
    r.add_argument("--no-correlation", action="store_true", help="skip the metric-vs-human correlation")
    r.set_defaults(func=_report)


def _templates(args: argparse.Namespace) -> int:
    from ..annotate.study import TEMPLATES, template_path

    if args.name:
        sys.stdout.write(template_path(args.name).read_text("utf-8"))
        return 0
    for name in TEMPLATES:
        first = template_path(name).read_text("utf-8").splitlines()[0].lstrip("# ")
        print(f"{name}: {first}")
    return 0


def _study_files(folder: Path) -> list[Path]:
    """The files of a study folder, which no output may overwrite."""
    from ..annotate.store import DB_NAME

    return [folder / name for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", "study.json", LINKS, PASSWORD)]


def _create(args: argparse.Namespace) -> int:
    from ..annotate.store import PRIVATE, create_store
    from ..annotate.study import build_study

    password = None
    if args.admin_password_env:
        password = os.environ.get(args.admin_password_env)
        if not password:
            raise ConfigError(f"environment variable {args.admin_password_env} is empty or not set")
    study = build_study(args.study)
    out = Path(args.out)
    path, tokens, password = create_store(study, out, password, force=args.force)
    base = args.url.rstrip("/")
    with atomic_writer(out / LINKS, mode=PRIVATE) as handle:
        writer = csv.writer(handle)
        writer.writerow(["annotator", "url"])
        for name, token in tokens.items():
            writer.writerow([name, f"{base}/?token={token}"])
    if args.admin_password_env:
        (out / PASSWORD).unlink(missing_ok=True)  # a replaced study's password
    else:
        with atomic_writer(out / PASSWORD, mode=PRIVATE) as handle:
            handle.write(password + "\n")
    n_checks = sum(u.is_check for u in study.units)
    print(f"{study.name}: {study.task} study, {len(study.units) - n_checks} units + {n_checks} attention checks, "
          f"{len(study.annotators)} annotators, {len(study.assignments)} assignments -> {path}")
    print(f"annotator links: {out / LINKS} (owner-only; tokens are stored hashed and cannot be shown again)")
    print(f"admin page: {base}/?admin=1  (password in {out / PASSWORD})" if not args.admin_password_env
          else f"admin page: {base}/?admin=1  (password from ${args.admin_password_env})")
    print(f"serve: pdg-eval annotate serve {out}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ..annotate.server import run_forwarding_signals, serve_command
    from ..annotate.store import Store

    Store(args.study_dir)  # fail early and clearly on a folder without a study
    print(f"serving {args.study_dir} on http://{args.host}:{args.port}/ (annotators: their links; admin: /?admin=1)",
          flush=True)
    return run_forwarding_signals(serve_command(args.study_dir, args.port, args.host))


def revisions_path(out: Path) -> Path:
    """Where a CSV export's revision history goes: ``judgments.csv`` → ``judgments.revisions.csv``."""
    return out.with_name(f"{out.stem}.revisions.csv")


def _export(args: argparse.Namespace) -> int:
    from ..annotate.store import PRIVATE, Store

    store = Store(args.study_dir)
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ConfigError(f"--out must end in .csv or .jsonl; got {out.name}")
    history = revisions_path(out) if suffix == ".csv" else None
    check_outputs([out, history], _study_files(store.path.parent))
    checks = not args.no_checks
    with all_or_nothing():  # the files hold system names: owner-only, like the study's own
        with atomic_writer(out, mode=PRIVATE) as handle:
            if history is None:
                handle.write(store.export_jsonl(include_checks=checks))
            else:
                store.frame(include_checks=checks).to_csv(handle, index=False)
        if history is not None:
            with atomic_writer(history, mode=PRIVATE) as handle:
                store.history_frame(include_checks=checks).to_csv(handle, index=False)
    print(f"wrote {out}" + (f" and {history}" if history else ""))
    return 0


def _import(args: argparse.Namespace) -> int:
    from ..annotate.importers import IMPORTERS, WITH_DATASET, write_imported

    if args.source not in IMPORTERS:
        raise ConfigError(f"unknown judgment source {args.source!r}; expected one of {', '.join(IMPORTERS)}")
    if args.dataset and args.source not in WITH_DATASET:
        raise ConfigError(f"--dataset is for {', '.join(WITH_DATASET)}, not {args.source}")
    extra = {"dataset": args.dataset} if args.source in WITH_DATASET else {}
    study = IMPORTERS[args.source](args.path, **extra)  # read all of it before anything is written
    write_imported(study, args.out, force=args.force)
    print(f"{study.name}: {len(study.frame)} {study.task} judgments, {len(study.records)} records -> {args.out}")
    for note in study.notes:
        print(f"note: {note}")
    return 0


def _levels(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        aspect, sep, level = pair.rpartition("=")
        if not sep or not aspect:
            raise ConfigError(f"--level takes ASPECT=LEVEL; got {pair!r}")
        out[aspect] = level
    return out


def _report(args: argparse.Namespace) -> int:
    from ..annotate.analysis import AnalysisOptions, analyse
    from ..annotate.loading import load_judgments
    from ..annotate.report import write_report
    from ..annotate.study import GOLD_NAME

    loaded = load_judgments(args.source, args.records)
    gold = args.gold
    if gold is None and loaded.task == "ranking" and GOLD_NAME in set(loaded.frame["system"]):
        gold = GOLD_NAME
    options = AnalysisOptions(gold=gold, aspects=loaded.aspects or None, systems=loaded.systems or None,
                              levels=loaded.levels | _levels(args.level), domains=loaded.domains,
                              resamples=args.resamples, seed=args.seed)
    analysis = analyse(loaded.frame, loaded.task, loaded.name, options, checks=loaded.checks)
    if loaded.records and loaded.task != "pairwise" and not args.no_correlation:
        from ..annotate.correlation import (floor_warnings, human_scores, metric_human_correlation,
                                            metric_item_values, paired_spearman_differences, resample_correlations)

        metrics, signatures, left_out = metric_item_values(
            loaded.records, args.preset, args.metric, models=slot_models(args))
        if metrics.shape[1] == 0:
            analysis.notes.append(f"no requested metric has per-item values: no correlation ({'; '.join(left_out)})")
        else:
            analysis.correlation_left_out = left_out
            excluded = loaded.exclude_from_correlation + args.exclude_system
            human = human_scores(loaded.frame, loaded.task, gold, loaded.aspects)
            resampled = resample_correlations(human, metrics, args.resamples, args.seed, excluded)
            analysis.correlation = metric_human_correlation(human, metrics, resampled=resampled)
            analysis.correlation_differences = paired_spearman_differences(human, metrics, resampled=resampled)
            analysis.metric_signatures = signatures
            analysis.correlation_notes = loaded.notes + (
                [f"Left out of the correlation: {', '.join(excluded)}."] if excluded else [])
            analysis.correlation_notes += floor_warnings(metrics)
    elif loaded.notes:
        analysis.notes += loaded.notes
    path = write_report(analysis, args.out)
    print(f"wrote {path} (+ report.json and plots in {args.out})")
    return 0
