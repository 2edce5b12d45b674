"""The main job's first million frames, per task: what the kickstarted student does on the tasks its teacher cannot
teach (issue 20), over seeds, against the same student from scratch and with the untaught-task entropy bonus
(`--kickstart_untaught_entropy`, `sf_kickstart/kickstart/untaught.py`).

    python -m benchmarks.main_job_early --arms=ks_main,scratch_fixed,ks_untaught_0.1 --seeds=0,1,2
    python -m benchmarks.main_job_early --analyze_only

Each arm × seed is `benchmarks.main_job`'s run (`cfg/minigrid_large_student.yaml`, its 4M-frame budget, so the
learning rate decays as in the main job) stopped with SIGTERM (a graceful stop: a final checkpoint; SIGINT would be
ignored by a run started from a background shell) once it has trained --stop_frames frames. Its record goes to `--records` (default `benchmarks/results/main_job_early_runs/`); a
run whose record holds --stop_frames is skipped (`run_records.reached`). `ks_main` and `scratch_fixed` are the main job's own arms: their 4M-frame records
(`benchmarks/results/main_job_runs/`) are read for their first --stop_frames too. `ks_untaught_<c>` is `ks_main` with
`--kickstart_untaught_entropy=<c>`, `ks_alpha_<a>` is `ks_main` with `--kickstart_lambda=<a>` (re-engaging λ's
scale), `ks_smooth_<e>` is `ks_main` with `--kickstart_teacher_smoothing=<e>`; `ks_notask` / `scratch_notask` are `ks_main` / `scratch_fixed` with the student reading the grid only
(`--student_obs_keys=obs`: no task id, as a DMLab-30 agent; the teacher still reads it).

Reported (`benchmarks/results/main_job_early_cpu.md` / `.json`), at each mark, mean over seeds [95 % bootstrap CI
over seeds]: the training suite score; the score and the student's entropy (`train/task_entropy/<task>`) on each task
the teacher is at random level on (KeyCorridorS3R1, KeyCorridorS3R3 for the shipped teacher); the entropy on the
other tasks (their mean). Each mark is the mean of the run's points in the window before it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from typing import Dict, List, Optional

import numpy as np

from benchmarks.main_job import ARMS as MAIN_JOB_ARMS
from benchmarks.main_job import at_marks, exp_name
from benchmarks.run_records import open_run, reached, record_path, save_record
from sf_kickstart import tags
from sf_kickstart.paths import REPO_ROOT
from sf_kickstart.processes import start_train
from sf_kickstart.stats import mean_ci

MAIN_JOB_FRAMES = 4_000_000
RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results")
MAIN_JOB_RECORDS = os.path.join(RESULTS, "main_job_runs")
UNTAUGHT = ("KeyCorridorS3R1", "KeyCorridorS3R3")  # the shipped teacher's random-level tasks (its evaluation: ≤ 0)
RECORD_TAGS = ("suite/score", "suite/*_normalized", "train/task_entropy/*", "kickstart/task_lambda/*",
               "kickstart/task_exploration/*", tags.UNTAUGHT_ENTROPY_LOSS, "train/entropy")
MARKS = (50_000, 100_000, 250_000, 500_000, 750_000, 1_000_000, 1_250_000, 1_500_000)
FRAMES_RE = re.compile(r"Total num frames: (\d+)")


NO_TASK_ID = ["--student_obs_keys=obs"]  # the student reads the grid only; its teacher still reads task_id
EXTRA_ARMS: Dict[str, List[str]] = {
    "ks_notask": MAIN_JOB_ARMS["ks_main"] + NO_TASK_ID,
    "scratch_notask": MAIN_JOB_ARMS["scratch_fixed"] + NO_TASK_ID,
}

#: `<prefix><x>`: `ks_main` with one flag set to x
PARAMETRIC_ARMS: Dict[str, str] = {
    "ks_untaught_": "--kickstart_untaught_entropy",  # the untaught-task entropy bonus c
    "ks_alpha_": "--kickstart_lambda",  # re-engaging λ's scale α (the schedule's value; the main job's is 1)
    "ks_smooth_": "--kickstart_teacher_smoothing",  # label smoothing ε of the teacher's target
}


def arm_flags(arm: str) -> List[str]:
    if arm in MAIN_JOB_ARMS:
        return MAIN_JOB_ARMS[arm]
    if arm in EXTRA_ARMS:
        return EXTRA_ARMS[arm]
    for prefix, flag in PARAMETRIC_ARMS.items():
        m = re.fullmatch(prefix + r"([0-9.]+)", arm)
        if m is not None:
            return MAIN_JOB_ARMS["ks_main"] + [f"{flag}={m.group(1)}"]
    raise SystemExit(f"unknown arm {arm!r}: one of {sorted(MAIN_JOB_ARMS) + sorted(EXTRA_ARMS)} or "
                     + " or ".join(f"{prefix}<x>" for prefix in PARAMETRIC_ARMS))


def logged_frames(log_path: str) -> int:
    with open(log_path, errors="replace") as f:
        found = FRAMES_RE.findall(f.read())
    return int(found[-1]) if found else 0


def train_until(args, name: str, flags: List[str], seed: int) -> None:
    """The main job's run, stopped with SIGTERM at --stop_frames (exit 143, a final checkpoint written)."""
    log_path = os.path.join(args.train_dir, f"{name}.log")
    proc = start_train(["--preset=minigrid_large_student.yaml", "--env=minigrid_suite", f"--experiment={name}",
                        f"--train_dir={args.train_dir}", f"--seed={seed}", f"--train_for_env_steps={MAIN_JOB_FRAMES}",
                        "--eval_every_frames=500000", *flags], log_path)
    while proc.poll() is None and logged_frames(log_path) < args.stop_frames:
        time.sleep(5)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    rc = proc.wait()
    if rc not in (0, 128 + signal.SIGTERM) or logged_frames(log_path) < args.stop_frames:
        raise SystemExit(f"[main_job_early] {name}: exit {rc} at {logged_frames(log_path)} frames; see {log_path}")


def run_one(args, arm: str, seed: int) -> None:
    name = exp_name(arm, seed)
    exp_dir = os.path.join(args.train_dir, name)
    sources = [args.records] + ([MAIN_JOB_RECORDS] if arm in MAIN_JOB_ARMS else [])
    if any(reached(exp_dir, d, args.stop_frames, None, lambda record: record.trained_frames) for d in sources):
        print(f"[main_job_early] {name}: recorded, skipped", flush=True)
        return
    if not os.path.isfile(os.path.join(args.train_dir, f"{name}.log")) or logged_frames(
            os.path.join(args.train_dir, f"{name}.log")) < args.stop_frames:
        print(f"[main_job_early] {name}: training to {args.stop_frames} frames", flush=True)
        os.makedirs(args.train_dir, exist_ok=True)
        train_until(args, name, arm_flags(arm), seed)
    save_record(exp_dir, record_path(args.records, name), RECORD_TAGS, (), args.train_dir)


# ---------------------------------------------------------------- analysis
def read(args, arm: str, seed: int) -> Optional[Dict[str, np.ndarray]]:
    name = exp_name(arm, seed)
    view = open_run(os.path.join(args.train_dir, name), args.records, RECORD_TAGS, policies=())
    if view is None and arm in MAIN_JOB_ARMS:
        view = open_run(os.path.join(args.train_dir, "_none_"), MAIN_JOB_RECORDS, RECORD_TAGS, name=name, policies=())
    if view is None or not view.scalars:
        return None
    marks = np.asarray(MARKS, dtype=np.float64)
    window = np.diff(np.concatenate([[0.0], marks]))
    curve = lambda tag: np.array([at_marks(view.scalars.get(tag), marks[i:i + 1], window[i])[0]  # noqa: E731
                                  for i in range(len(marks))])
    tasks = [t[len("suite/"):-len("_normalized")] for t in view.scalars if t.startswith("suite/") and
             t.endswith("_normalized") and t != tags.SUITE_MEAN_NORMALIZED]
    out = {"suite score": curve(tags.SUITE_SCORE)}
    for task in UNTAUGHT:
        out[f"{task} score"] = curve(f"suite/{task}_normalized")
        out[f"{task} entropy"] = curve(tags.task_entropy(task))
    others = [curve(tags.task_entropy(t)) for t in tasks if t not in UNTAUGHT]
    out["entropy, the other tasks (mean)"] = np.nanmean(np.stack(others), 0) if others else np.full(len(MARKS), np.nan)
    return out


def cell(values) -> str:
    v = [x for x in values if np.isfinite(x)]
    if not v:
        return "n/a"
    ci = mean_ci(v)
    prec = 2 if abs(np.mean(v)) < 10 else 1
    return f"{np.mean(v):.{prec}f}" + (f" [{ci[0]:.{prec}f}, {ci[1]:.{prec}f}]" if ci else " (1 seed)")


def analyze(args) -> dict:
    runs = {arm: {s: r for s in args.seeds if (r := read(args, arm, s)) is not None} for arm in args.arms}
    lines = ["# The main job's first million frames: the tasks the teacher cannot teach", "",
             f"`python -m benchmarks.main_job_early --arms={','.join(args.arms)} "
             f"--seeds={','.join(map(str, args.seeds))}`", "",
             "Mean over seeds [95 % bootstrap CI over seeds]; seeds per arm: "
             + ", ".join(f"{arm} {sorted(r)}" for arm, r in runs.items()), ""]
    result = {}
    metrics = next(iter(r for rs in runs.values() for r in rs.values()), {}).keys()
    for metric in metrics:
        lines += [f"## {metric}", "", "| arm | " + " | ".join(f"{m // 1000}K" for m in MARKS) + " |",
                  "|---|" + "---|" * len(MARKS)]
        for arm, rs in runs.items():
            per_mark = [[r[metric][i] for r in rs.values()] for i in range(len(MARKS))]
            lines.append(f"| {arm} | " + " | ".join(cell(v) for v in per_mark) + " |")
            result.setdefault(arm, {})[metric] = [[float(x) for x in v] for v in per_mark]
        lines.append("")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "main_job_early_cpu.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(args.out, "main_job_early_cpu.json"), "w") as f:
        json.dump(dict(marks=MARKS, seeds={a: sorted(r) for a, r in runs.items()}, curves=result), f, indent=1)
    print("\n".join(lines))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default="ks_main,scratch_fixed,ks_untaught_0.1", type=lambda s: s.split(","))
    ap.add_argument("--seeds", default="0,1,2", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--stop_frames", type=int, default=1_050_000)
    ap.add_argument("--train_dir", default=os.path.join(REPO_ROOT, "bench_out", "main_job_early"))
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--records", default=os.path.join(RESULTS, "main_job_early_runs"))
    ap.add_argument("--analyze_only", action="store_true")
    args = ap.parse_args(argv)
    if not args.analyze_only:
        for seed in args.seeds:
            for arm in args.arms:
                run_one(args, arm, seed)
    analyze(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
