"""`python -m sf_kickstart.report` (see the package docstring): read, analyse, render."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence, Tuple

from sf_kickstart import tags
from sf_kickstart.errors import UserError, exit_status
from sf_kickstart.report.analysis import BASELINE_DEFAULT, Analysis, Options, analyse
from sf_kickstart.report.io import load_experiments
from sf_kickstart.report.markdown import render_markdown
from sf_kickstart.report.plots import make_plots


def _floats(text: str) -> Tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sf_kickstart.report",
        description="Paper-style tables (report.md) and PNG plots from Sample Factory experiments' tensorboard events.",
    )
    p.add_argument("train_dirs", nargs="+", metavar="TRAIN_DIR", help="directories searched for experiments")
    p.add_argument("--out", default=None, help="output dir (default: <first TRAIN_DIR>/report)")
    p.add_argument("--metric", default=None, help=f"score tag (default: the first present of {', '.join(tags.SCORE_METRICS)})")
    p.add_argument("--budgets", type=_floats, default=(0.1, 0.25, 0.5, 1.0), help="fractions of B for Table 1")
    p.add_argument("--frames", type=float, default=None, help="reference frames B (default: the longest run)")
    p.add_argument("--thresholds", type=_floats, default=(), help="extra scores for Table 2, e.g. 50,80")
    p.add_argument("--baseline", default=None, help=f"baseline method (default: {BASELINE_DEFAULT})")
    p.add_argument("--teacher_score", type=float, default=None, help="use this as every teacher's final score")
    p.add_argument("--pbt_top", type=int, default=3, help="PBT members per population in the tables")
    p.add_argument("--final_window", type=float, default=0.05, help="fraction of a run's frames averaged as its final score")
    p.add_argument("--exclude_running", action="store_true", help="leave unfinished runs out")
    p.add_argument("--methods", nargs="*", default=(), help="only these methods (glob patterns)")
    return p


def _nothing_to_report(a: Analysis, n_experiments: int) -> Optional[str]:
    """Why there is nothing to report (no run has the metric nor any kickstart/* tag), else None."""
    all_tags = sorted({t for us in a.all_units.values() for u in us for t in u.scalars})
    if a.units or any(t.startswith(tags.KICKSTART) for t in all_tags):
        return None
    if not all_tags:
        why = "no scalar summaries in any event file"
    elif a.metric is None:
        why = f"no run has a score metric ({', '.join(tags.SCORE_METRICS)}) nor any kickstart/* tag"
    else:
        why = f"no run has `{a.metric}` nor any kickstart/* tag"
    shown = ", ".join(all_tags[:25]) + (" ..." if len(all_tags) > 25 else "")
    return f"nothing to report for {n_experiments} experiment(s): {why}. Tags present: {shown or 'none'}"


def _options(args) -> Options:
    return Options(
        metric=args.metric,
        budgets=tuple(args.budgets),
        frames=args.frames,
        thresholds=tuple(args.thresholds),
        baseline=args.baseline,
        teacher_score=args.teacher_score,
        pbt_top=args.pbt_top,
        final_window=args.final_window,
        exclude_running=args.exclude_running,
        methods=tuple(args.methods or ()),
    )


class ReportInputError(UserError):
    """A TRAIN_DIR that does not exist, or an option out of its range (exit code 2)."""


class NothingToReport(UserError):
    """No experiment under the TRAIN_DIRs, or none with the metric nor any kickstart/* tag (exit code 1)."""

    exit_code = 1


def check_args(args) -> None:
    missing = [d for d in args.train_dirs if not os.path.isdir(d)]
    if missing:
        raise ReportInputError(f"{', '.join(missing)}: no such directory")
    if args.pbt_top < 1 or not (0 < args.final_window <= 1) or any(not (0 < f <= 10) for f in args.budgets):
        raise ReportInputError("--pbt_top must be >= 1, --final_window in (0, 1], --budgets positive fractions")


def report(args, argv: Sequence[str]) -> str:
    """Read, analyse, render; returns the line saying what was written. NothingToReport when there is nothing."""
    experiments = load_experiments(args.train_dirs)
    if not experiments:
        raise NothingToReport(
            f"no Sample Factory experiment under {', '.join(args.train_dirs)}: expected "
            f"<experiment>/.summary/<policy_id>/events.out.tfevents.* (is this a train_dir?)"
        )
    a = analyse(experiments, _options(args))
    why = _nothing_to_report(a, len(experiments))
    if why is not None:
        raise NothingToReport(why)
    out = args.out or os.path.join(args.train_dirs[0], "report")
    os.makedirs(out, exist_ok=True)
    plots = make_plots(a, out)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(render_markdown(a, plots, argv))
    for n in a.notes:
        print(f"sf_kickstart.report: note: {n}", file=sys.stderr)
    return f"wrote {os.path.join(out, 'report.md')} and {len(plots)} plot(s) for {len(a.methods)} method(s)"


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        check_args(args)
        print(report(args, argv))
    except UserError as exc:
        return exit_status(exc)
    return 0
