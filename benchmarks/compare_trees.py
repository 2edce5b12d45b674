"""Two source trees side by side on `benchmarks/teacher_cost.py`: is a refactor slower?

Runs each tree's own `python -m benchmarks.teacher_cost --rounds=1` (its own code, its own copy of the script) in a
subprocess, alternating the trees round by round (A B, B A, A B, ...) so that the machine's drift falls on both, and
parses the per-frame table each run prints. Per tree: the median and range over rounds of every column (µs of CPU
per frame) and of the teacher share, plus the CPU time of the whole subprocess. The trees' figures are "the same"
when each tree's median lies inside the other's range.

    git worktree add /tmp/old_tree <old commit>
    python -m benchmarks.compare_trees --old=/tmp/old_tree --new=. --rounds=5 --out=benchmarks/results/teacher_cost_trees.md
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

COLUMNS = ["env step", "student forward", "student train step", "teachers' forward", "learner's extra", "total"]
ROW = re.compile(r"^\| (one_teacher|per_task) \| " + r" \| ".join([r"([\d.]+)"] * 6) + r" \| \*\*([\d.]+)%\*\*")


def one_run(tree: str, opts) -> Dict[str, Dict[str, float]]:
    """One `teacher_cost --rounds=1` in `tree`: {setup: {column: µs per frame, "share": %}} and the run's CPU s."""
    with tempfile.TemporaryDirectory() as train_dir:
        args = [sys.executable, "-m", "benchmarks.teacher_cost", "--rounds=1", f"--calls={opts.calls}",
                f"--train_steps={opts.train_steps}", f"--train_dir={train_dir}", "--batch_sizes=9"]
        env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"teacher_cost failed in {tree}:\n{(r.stdout + r.stderr)[-3000:]}")
    rows = {}
    for line in r.stdout.splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = dict(zip(COLUMNS + ["share"], map(float, m.groups()[1:])))
    if set(rows) != {"one_teacher", "per_task"}:
        raise SystemExit(f"no per-frame table in the output of {tree}:\n{r.stdout[-3000:]}")
    rows["run"] = {"cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}
    return rows


def summarize(runs: List[Dict]) -> Dict[str, Dict[str, tuple]]:
    """{setup: {column: (median, min, max)}} over the runs of one tree."""
    out = {}
    for setup in runs[0]:
        out[setup] = {}
        for col in runs[0][setup]:
            values = [r[setup][col] for r in runs]
            out[setup][col] = (statistics.median(values), min(values), max(values))
    return out


def render(trees: Dict[str, str], stats: Dict[str, Dict], rounds: int, command: str) -> str:
    lines = [f"# teacher_cost: old tree vs new tree, {rounds} alternating rounds", "", f"`{command}`", ""]
    for name, path in trees.items():
        lines.append(f"- {name}: `{os.path.abspath(path)}`")
    lines += ["", "Median [min, max] over rounds, µs of CPU per frame (teacher share in %; the run's CPU in s).", ""]
    for setup in ("one_teacher", "per_task", "run"):
        cols = list(stats["old"][setup])
        lines += [f"## {setup}", "", "| column | old | new | same within the spread |", "|---|---|---|---|"]
        for col in cols:
            (mo, lo, ho), (mn, ln, hn) = stats["old"][setup][col], stats["new"][setup][col]
            same = "yes" if (ln <= mo <= hn and lo <= mn <= ho) else "no"
            lines.append(f"| {col} | {mo:.2f} [{lo:.2f}, {ho:.2f}] | {mn:.2f} [{ln:.2f}, {hn:.2f}] | {same} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="the old source tree (e.g. a git worktree of the old commit)")
    ap.add_argument("--new", default=".", help="the new source tree")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--train_steps", type=int, default=8)
    ap.add_argument("--out", default=None, help="write the markdown report here too")
    opts = ap.parse_args(argv)
    trees = {"old": opts.old, "new": opts.new}
    runs: Dict[str, List] = {"old": [], "new": []}
    for i in range(opts.rounds):
        for name in (("old", "new") if i % 2 == 0 else ("new", "old")):
            t0 = time.time()
            runs[name].append(one_run(trees[name], opts))
            print(f"round {i} {name}: {time.time() - t0:.0f} s, {runs[name][-1]}", flush=True)
    command = "python -m benchmarks.compare_trees " + " ".join(argv if argv is not None else sys.argv[1:])
    md = render(trees, {k: summarize(v) for k, v in runs.items()}, opts.rounds, command)
    print(md)
    if opts.out:
        os.makedirs(os.path.dirname(opts.out) or ".", exist_ok=True)
        with open(opts.out, "w") as f:
            f.write(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
