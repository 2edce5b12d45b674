"""The report's markdown: one section per function, each formatting numbers the analysis computed (no analysis
here)."""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

from sf_kickstart import tags
from sf_kickstart.experiments import format_frames
from sf_kickstart.report.analysis import Analysis, Stat, num
from sf_kickstart.report.model import Experiment


def _stat(s: Stat, fmt=num) -> str:
    """mean [95 % CI] (the interval only with ≥ 2 runs); (n/total) when some runs have no value."""
    if s.mean is None:
        return "-"
    text = fmt(s.mean) + ("" if s.ci is None else f" [{fmt(s.ci[0])}, {fmt(s.ci[1])}]")
    return text if s.n == s.total else f"{text} ({s.n}/{s.total})"


def _pct_interval(ci) -> str:
    return "" if ci is None else f" [{ci[0]:+.1f}%, {ci[1]:+.1f}%]"


def _table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _method_cell(a: Analysis, m: str) -> str:
    text = f"`{m}`"
    if m == a.baseline:
        text += " (baseline)"
    if a.method_running(m):
        text += " *"
    return text



def _header(a: Analysis, argv: Sequence[str]) -> List[str]:
    o = a.options
    md: List[str] = ["# Kickstarting report", ""]
    if argv:
        md += [f"`python -m sf_kickstart.report {' '.join(argv)}`", ""]
    md += [
        f"- score metric: `{a.metric}`" if a.metric else "- score metric: none available",
        f"- baseline: `{a.baseline}`" if a.baseline else "- baseline: none",
        f"- reference frames B: {format_frames(a.ref_frames)}" + ("" if o.frames else " (the longest run's target)"),
        f"- final score: mean over the last {o.final_window:.0%} of a run's frames; PBT: top {o.pbt_top} members",
        "- `*`: includes runs that have not finished (see Runs)",
        "",
    ]
    return md


def _runs(a: Analysis) -> List[str]:
    """Every experiment read, with its status and setup."""
    md: List[str] = []
    md += ["## Runs", ""]
    rows = []
    for e in a.experiments:
        target = e.cfg.get("train_for_env_steps")
        last = a.last_frames.get(e.name)
        rows.append(
            [
                f"`{e.name}`",
                f"`{e.method}`",
                "-" if e.seed is None else str(e.seed),
                str(len(e.policies)) + (" (PBT)" if e.pbt else ""),
                e.status,
                format_frames(last),
                format_frames(float(target)) if isinstance(target, (int, float)) else "-",
                _setup(e),
            ]
        )
    md += [_table(["experiment", "method", "seed", "policies", "status", "last frame", "target", "setup"], rows), ""]
    return md


def _table1(a: Analysis) -> List[str]:
    """Score at frame budgets."""
    o = a.options
    md: List[str] = []
    md += [f"## Table 1 — score at frame budgets (`{a.metric}`, mean [95 % bootstrap CI] over n runs)", ""]
    header = ["method", "n"] + [f"{f:.0%} ({format_frames(F)})" for f, F in zip(o.budgets, a.budget_frames)]
    rows = [[_method_cell(a, m), str(len(a.units[m]))] + [_stat(s) for s in a.table_budgets[m]] for m in a.methods if m in a.units]
    md += [_table(header, rows), ""]
    return md


def _table2(a: Analysis) -> List[str]:
    """Frames to reach each threshold and the speedup over the baseline."""
    md: List[str] = []
    md += [
        "## Table 2 — frames to reach a score and speedup vs the baseline",
        "",
        "Per threshold: the first frame of the mean curve; each run's own first frame, mean [95 % bootstrap CI] over "
        "the runs that reach it (k/n: runs that do); the speedup of the mean curves.",
        "",
    ]
    if a.thresholds:
        header = ["method", "n"]
        for th in a.thresholds:
            header += [f"{th.title}: mean curve", "per run (k/n)", "speedup"]
        rows = []
        for m in a.methods:
            if m not in a.units:
                continue
            row = [_method_cell(a, m), str(len(a.units[m]))]
            for th in a.thresholds:
                r = a.table_reach[m][th.key]
                if r.threshold is None:
                    row += ["-", "-", "-"]
                    continue
                fr = format_frames(r.frames) if r.frames is not None else f"not by {format_frames(r.last)}"
                if th.common is None:
                    fr += f" (at {num(r.threshold)})"
                per_run = "-" if r.per_run is None or r.per_run.mean is None else _stat(r.per_run, format_frames).split(" (")[0]
                row += [fr, f"{per_run} ({r.runs_reached}/{r.runs})", a.table_speedup[m][th.key].text()]
            rows.append(row)
        md += [_table(header, rows), ""]
    else:
        md += ["No thresholds: no teacher score, no baseline and no --thresholds.", ""]
    return md


def _table3(a: Analysis) -> List[str]:
    """Final score, improvement over the baseline, the teacher and when it is reached."""
    md: List[str] = []
    md += ["## Table 3 — final score and improvement over the baseline (mean [95 % bootstrap CI] over n runs)", ""]
    header = ["method", "n", "final score", "vs baseline", "teacher (final score)", "reaches teacher's final at"]
    rows = []
    for m in a.methods:
        if m not in a.units:
            continue
        imp = a.improvement.get(m)
        t = a.teachers.get(m)
        rows.append(
            [
                _method_cell(a, m),
                str(len(a.units[m])),
                _stat(a.finals[m]),
                "-" if imp is None else f"{imp:+.1f}%" + _pct_interval(a.improvement_ci.get(m)),
                "-" if t is None else f"`{t[0]}` ({num(t[1])})",
                "-" if t is None else (format_frames(a.surpass.get(m)) if a.surpass.get(m) is not None else "never"),
            ]
        )
    md += [_table(header, rows), ""]
    return md


def _final_values(a: Analysis, title: str, table: Dict[str, Dict[str, Optional[float]]], columns, labels) -> List[str]:
    """A table of final values per method (rows: the methods that have any)."""
    if not table:
        return []
    rows = [[_method_cell(a, m)] + [num(table[m][c]) for c in columns] for m in a.methods if m in table]
    return [title, "", _table(["method"] + list(labels), rows), ""]


def _diagnostics(a: Analysis) -> List[str]:
    """Final kickstart diagnostics per method: the columns some method has (a Box-only run writes no
    `action_agreement`, a discrete one no Gaussian `teacher_std`, a run without value distillation no `value_mse`)."""
    title = "## Kickstarting diagnostics (final values, mean over runs)"
    columns = [k for k in tags.KS_DIAGNOSTICS if any(row.get(k) is not None for row in a.diagnostics.values())]
    return _final_values(a, title, a.diagnostics, columns, [f"`{k}`" for k in columns])


def _task_scores(a: Analysis) -> List[str]:
    """Final normalised score per task."""
    title = "## Final normalised score per task (`suite/<Task>_normalized`, mean over runs)"
    return _final_values(a, title, a.task_scores, a.tasks, a.tasks)


def _pbt(a: Analysis) -> List[str]:
    """Every PBT population: its members and exploit events."""
    md: List[str] = []
    if a.pbt:
        md += ["## PBT populations", ""]
        for e in a.pbt:
            md += [f"### `{e.name}`", ""]
            view = a.pbt_views[e.name]
            ev = view.exploits
            rows = [
                [f"p{p.policy}", num(p.final), num(p.last_lambda), num(p.last_lr), str(p.exploits_received)]
                for p in view.members
            ]
            md += [_table(["member", "final score", "last λ", "last lr", "exploits received"], rows), ""]
            if ev:
                md += ["Exploit events (member ← source at the member's frames): " + ", ".join(f"p{mem} ← p{src} at {format_frames(f)}" for f, mem, src in ev), ""]
            else:
                md += [f"No exploit events (no `{tags.EXPLOIT}` summaries nor exploit lines in sf_log.txt).", ""]
    return md


def render_markdown(a: Analysis, plots: Dict[str, str], argv: Sequence[str] = ()) -> str:
    md = _header(a, argv) + _runs(a)
    if a.metric and a.units:
        md += _table1(a) + _table2(a) + _table3(a)
    md += _diagnostics(a) + _task_scores(a) + _pbt(a)
    if plots:
        md += ["## Plots", ""]
        for title, fname in plots.items():
            md += [f"### {title}", "", f"![{title}]({fname})", ""]
    if a.notes:
        md += ["## Notes", ""] + [f"- {n}" for n in a.notes] + [""]
    return "\n".join(md)


def _setup(e: Experiment) -> str:
    c = e.cfg
    if not c:
        return "-"
    parts = [str(c.get("env", "?"))]
    if c.get("teacher") or c.get("teachers"):
        t = c.get("teacher") or c.get("teachers")
        parts.append(f"teacher `{os.path.basename(os.path.normpath(str(t)))}`")
        sched = c.get("kickstart_schedule", "?")
        lam = c.get("kickstart_lambda")
        if sched == "linear":
            parts.append(f"λ {lam:g}→0 at {format_frames(c.get('kickstart_end_frames'))}")
        elif sched == "exponential":
            parts.append(f"λ {lam:g}·{c.get('kickstart_decay'):g}^(t/{format_frames(c.get('kickstart_decay_frames'))})")
        else:
            parts.append(f"λ {sched} {lam:g}" if isinstance(lam, (int, float)) else f"λ {sched}")
        if c.get("kickstart_distill_only"):
            parts.append("distillation only")
    if c.get("with_pbt"):
        parts.append(f"PBT × {c.get('num_policies')}")
    return ", ".join(parts)


