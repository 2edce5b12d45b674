"""README's main job run to its end, over seeds: the large student kickstarted from the shipped teacher against the same
student from scratch, old optimisation (constant learning rate) against the fixed preset (linear decay and the KL
brake, `sf/fixes/lr_schedule.py`), with
per-task curves, the collapse diagnostics of issue 20 and its acceptance checks.

    python -m benchmarks.main_job --arms=scratch_const,ks_main,scratch_fixed --seeds=0,1,2
    python -m benchmarks.main_job --analyze_only            # the tables and figure from the runs on disk / records

Each arm × seed is one `python -m sf_kickstart.train` run of --frames env frames (`cfg/minigrid_large_student.yaml`,
the arm's own flags, `--seed`), then `python -m sf_kickstart.evaluate` of its final checkpoint against the teacher,
100 greedy and 100 sampled episodes per task on the same episode seeds. Runs are done one at a time, in the order
given (seed-major, so the first seeds of every arm finish first); a run whose evaluation is on disk is skipped, an
unfinished one resumes from its last checkpoint (SF's resume), so the script can be stopped and started again.
Each finished run is also kept as a run record, `--records/<arm>_s<seed>.json` (`benchmarks/run_records`: its
curves, diagnostics, evaluations and config; committed): a run with a finished record is skipped too, and analysed
from its record when its experiment dir is not on this machine, so seeds run in different sessions are reported
together. Every invocation, `--analyze_only` too, writes the records of finished runs on disk that have none yet.

What it reports (`benchmarks/results/main_job_cpu.md` / `.json`, figure `main_job_curves.png`):
  * the final suite score and each task's score per arm: mean over seeds with a 95 % bootstrap CI over seeds, next to
    the teacher's (its shipped 100-episode evaluation);
  * curves: the training suite score and each task's (the runner's `suite/*` running means) at every --mark frames,
    and the periodic evaluation (`eval/*`, 10 greedy episodes per task), mean and CI over seeds;
  * collapses: a drop of more than --collapse_drop points of the training suite score between two marks after the
    run first reached the teacher's score; for each, the task that fell most and SF's `train/*` diagnostics (entropy,
    gradient norm, KL to the behaviour policy, learning rate, Adam's largest second moment, policy lag) in the window
    before the drop against the run's median;
  * issue 20's checks for --main_arm against --scratch_arm: final score above the teacher's with the CIs apart, no
    task trailing the teacher (task CI entirely below the teacher's score), ahead of scratch at every mark until both
    plateau, periodic evaluation never falling more than 10 points between reports after first reaching the teacher.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

import numpy as np

from benchmarks.run_records import RunRecord, open_run, reached, record_path, save_record
from sf_kickstart import tags
from sf_kickstart.evaluation_cache import read_scores
from sf_kickstart.paths import REPO_ROOT
from sf_kickstart.processes import run_python, run_train
from sf_kickstart.sf.fixes.lr_schedule import LINEAR_DECAY, decayed_lr
from sf_kickstart.stats import mean_ci

TEACHER = "zoo:minigrid_suite_small"
TEACHER_DIR = os.path.join(REPO_ROOT, "sf_kickstart", "zoo", "minigrid_suite_small")
KS = [f"--teacher={TEACHER}"]
LINEAR_KS = KS + ["--kickstart_schedule=linear", "--kickstart_end_frames=1000000"]
OLD = ["--lr_schedule=constant", "--lr_kl_brake=False"]  # the preset before issue 20
FIXED = ["--lr_schedule=linear_decay", "--lr_kl_brake=True"]  # the preset now
ARMS: Dict[str, List[str]] = {
    "scratch_const": OLD,
    "ks_linear_const": LINEAR_KS + OLD,  # the old main command
    "ks_reengage_const": KS + ["--kickstart_schedule=reengage"] + OLD,
    "scratch_fixed": FIXED,
    "ks_linear_fixed": LINEAR_KS + FIXED,
    "ks_main": KS + ["--kickstart_schedule=reengage"] + FIXED,  # README's main command
    # the main command with label smoothing of the teacher (issue 20: KeyCorridorS3R1 needs the drop no taught task has)
    "ks_smooth_0.5": KS + ["--kickstart_schedule=reengage"] + FIXED + ["--kickstart_teacher_smoothing=0.5"],
}
DIAGNOSTICS = ("train/entropy", "train/grad_norm", "train/kl_divergence", "train/ratio_max", "train/fraction_clipped",
               "train/lr", "train/adam_max_second_moment", "train/version_diff_avg", "train/value_loss", "train/adv_std")
POLICIES = ("greedy", "sampled")
# what read_run reads, and the per-task entropy and λ a later analysis of issue 20 needs (not recoverable later)
RECORD_TAGS = ("suite/score", "suite/*_normalized", "eval/suite_score", *DIAGNOSTICS, "train/task_entropy/*",
               "kickstart/task_teacher_entropy/*", "kickstart/task_lambda/*", "kickstart/task_factor/*")


def exp_name(arm: str, seed: int) -> str:
    return f"{arm}_s{seed}"


def finished(exp_dir: str, frames: int, records_dir: Optional[str] = None) -> bool:
    """The run's sampled evaluation, on disk or in its record, is of its final checkpoint."""
    def evaluated_at(data: Optional[dict]) -> Optional[int]:
        return None if data is None else int(data.get("env_steps", 0))

    return reached(exp_dir, records_dir, frames * 0.99, lambda d: evaluated_at(read_scores(d, "sampled")),
                   lambda record: evaluated_at(record.scores.get("sampled")))


def save_run(args, name: str) -> None:
    save_record(os.path.join(args.train_dir, name), record_path(args.records, name), RECORD_TAGS, POLICIES,
                args.train_dir)


def export_records(args) -> None:
    """Records for the finished runs on disk that have none yet (runs finished before records were kept)."""
    for arm in args.arms:
        for name in (exp_name(arm, seed) for seed in args.seeds):
            if finished(os.path.join(args.train_dir, name), args.frames) and not os.path.isfile(
                    record_path(args.records, name)):
                save_run(args, name)


def run_one(args, arm: str, seed: int) -> None:
    name = exp_name(arm, seed)
    exp_dir = os.path.join(args.train_dir, name)
    if finished(exp_dir, args.frames, args.records):
        print(f"[main_job] {name}: done, skipped", flush=True)
        return
    print(f"[main_job] {name}: training {args.frames} frames", flush=True)
    run_train(["--preset=minigrid_large_student.yaml", "--env=minigrid_suite", f"--experiment={name}",
               f"--train_dir={args.train_dir}", f"--seed={seed}", f"--train_for_env_steps={args.frames}",
               f"--eval_every_frames={args.eval_every}", *ARMS[arm]],
              log_path=os.path.join(args.train_dir, f"{name}.log"), check=True, append=True)
    for policy in POLICIES:
        run_python(["-m", "sf_kickstart.evaluate", exp_dir, f"--train_dir={args.train_dir}", f"--teacher={TEACHER}",
                    f"--episodes={args.episodes}", f"--policy={policy}", "--no_progress"],
                   log_path=os.path.join(args.train_dir, f"{name}.eval.log"), check=True, append=True)
    save_run(args, name)


# ---------------------------------------------------------------- reading runs
def at_marks(series, marks: np.ndarray, window: float) -> np.ndarray:
    """Mean of a series' points in (mark − window, mark] for each mark (NaN where none)."""
    out = np.full(len(marks), np.nan)
    if series is None or len(series) == 0:
        return out
    for i, m in enumerate(marks):
        sel = (series.steps > m - window) & (series.steps <= m)
        if sel.any():
            out[i] = float(np.mean(series.values[sel]))
    return out


def read_run(view: Optional[RunRecord], marks: np.ndarray, window: float) -> Optional[dict]:
    """A run's curves, diagnostics and final evaluations, from its dir or its record (`run_records.open_run`)."""
    if view is None or not view.scalars:
        return None
    scalars = view.scalars
    tasks = sorted(t[len("suite/"):-len("_normalized")] for t in scalars if t.startswith("suite/")
                   and t.endswith("_normalized") and t != "suite/mean_normalized")
    run = dict(frames=float(scalars["suite/score"].last_step) if "suite/score" in scalars else 0.0,
               train=at_marks(scalars.get("suite/score"), marks, window),
               train_tasks={t: at_marks(scalars.get(f"suite/{t}_normalized"), marks, window) for t in tasks},
               task_entropy={t: at_marks(scalars[tags.task_entropy(t)], marks, window) for t in tasks
                             if tags.task_entropy(t) in scalars},
               eval_steps=None, eval=None, diagnostics={}, final={})
    ev = scalars.get("eval/suite_score")
    if ev is not None:
        run["eval_steps"], run["eval"] = ev.steps, ev.values
    for tag in DIAGNOSTICS:
        if tag in scalars:
            run["diagnostics"][tag] = scalars[tag]
    for policy in POLICIES:
        data = view.scores.get(policy)
        if data is not None:
            run["final"][policy] = dict(evaluated(data), env_steps=int(data["env_steps"]))
    run["brake"] = brake_activity(view.config, run)
    return run


def brake_activity(cfg: Optional[dict], run: dict) -> Optional[dict]:
    """How much the KL brake slowed a run: the share of summaries whose `train/lr` is under 0.99 × its schedule's rate
    (`sf.fixes.lr_schedule.decayed_lr`, or the constant rate), the lowest lr / schedule ratio, and the KL's median and
    share above 2 × SF's default threshold (0.016). `cfg`: the run's config."""
    lr, kl = run["diagnostics"].get("train/lr"), run["diagnostics"].get("train/kl_divergence")
    if lr is None or kl is None or cfg is None:
        return None
    base, budget = float(cfg["learning_rate"]), float(cfg["train_for_env_steps"])
    decays = cfg.get("lr_schedule") == LINEAR_DECAY
    scheduled = np.array([decayed_lr(base, t, budget) if decays else base for t in lr.steps])
    live = scheduled > base * 1e-3  # the last frames of a decay: no ratio to speak of
    ratio = lr.values[live] / scheduled[live]
    return dict(braked_share=float(np.mean(ratio < 0.99)), lowest_ratio=float(ratio.min()),
                median_kl=float(np.median(kl.values)), kl_over_2x_threshold_share=float(np.mean(kl.values > 0.016)))


def evaluated(data: dict) -> dict:
    """An evaluation cache's suite score, its interval and each task's score."""
    return dict(suite=float(data["suite_score"]), suite_ci=list(data["suite_score_ci"]),
                tasks={t: float(v["score"]) for t, v in data["tasks"].items()})


def teacher_scores() -> dict:
    return evaluated(read_scores(TEACHER_DIR, "greedy"))


# ---------------------------------------------------------------- analysis
def ci_text(values) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    mean, ci = float(np.mean(values)), mean_ci(values)
    return f"{mean:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci is not None else f"{mean:.1f} (1 seed)"


def collapses(run: dict, marks: np.ndarray, drop: float) -> List[dict]:
    """Drops of more than `drop` points of the training suite score between two marks (from the second mark on);
    each with the task that fell most and the diagnostics of the window before it against the run's median."""
    train = run["train"]
    events = []
    for i in range(2, len(marks)):
        if not (np.isfinite(train[i]) and np.isfinite(train[i - 1])) or train[i - 1] - train[i] <= drop:
            continue
        falls = {t: c[i - 1] - c[i] for t, c in run["train_tasks"].items() if np.isfinite(c[i] - c[i - 1])}
        worst = max(falls, key=falls.get) if falls else "?"
        diag = {}
        for tag, s in run["diagnostics"].items():
            sel = (s.steps > marks[i - 1]) & (s.steps <= marks[i])
            if sel.any():
                diag[tag] = dict(window=float(np.mean(s.values[sel])), run_median=float(np.median(s.values)))
        events.append(dict(at=int(marks[i]), before=float(train[i - 1]), after=float(train[i]), task=worst,
                           task_drop=float(falls.get(worst, np.nan)), diagnostics=diag))
    return events


def max_eval_drop_after_reaching(run: dict, teacher: float) -> Optional[float]:
    """The largest fall of the periodic evaluation's suite score between two reports after it first reached
    `teacher` (None: never reached, or no evaluation)."""
    if run["eval"] is None:
        return None
    values = np.asarray(run["eval"], dtype=float)
    reached = np.flatnonzero(values >= teacher)
    if not len(reached) or reached[0] == len(values) - 1:
        return None if not len(reached) else 0.0
    tail = values[reached[0]:]
    return float(np.max(np.maximum(tail[:-1] - tail[1:], 0.0)))


def arm_curves(runs: List[dict], key: str = "train") -> np.ndarray:
    return np.array([r[key] for r in runs], dtype=float)


def checks(main: List[dict], scratch: List[dict], teacher: dict, marks: np.ndarray, policy: str) -> Dict[str, dict]:
    """Issue 20 item 3 for the main arm against scratch (final scores: `policy` episodes)."""
    finals = [r["final"][policy]["suite"] for r in main if policy in r["final"]]
    out = {}
    if finals:
        lo = (mean_ci(finals) or (np.nan, np.nan))[0]  # one seed: no interval, not a result
        out["above_teacher_ci_apart"] = dict(ok=bool(lo > teacher["suite_ci"][1]), student_ci_low=lo,
                                             teacher_ci_high=teacher["suite_ci"][1])
        trailing = []
        for task, t_score in teacher["tasks"].items():
            values = [r["final"][policy]["tasks"][task] for r in main if policy in r["final"]]
            hi = (mean_ci(values) or (np.nan, np.nan))[1]
            if not hi >= t_score - 1.0:  # a task's seeds all below the teacher: CI entirely under it (1-point tolerance)
                trailing.append(task)
        out["trails_on_no_task"] = dict(ok=not trailing, trailing=trailing)
    if main and scratch:
        m, s = np.nanmean(arm_curves(main), axis=0), np.nanmean(arm_curves(scratch), axis=0)
        behind = [int(marks[i]) for i in range(len(marks)) if np.isfinite(m[i] - s[i]) and m[i] < s[i] - 2.0]
        out["ahead_of_scratch"] = dict(ok=not behind, marks_behind_by_more_than_2=behind)
    drops = [max_eval_drop_after_reaching(r, teacher["suite"]) for r in main]
    known = [d for d in drops if d is not None]
    out["eval_never_drops_10"] = dict(ok=bool(known) and max(known) <= 10.0, max_drop_per_seed=drops)
    return out


# ---------------------------------------------------------------- report
def final_table(runs: Dict[str, List[dict]], teacher: dict, policy: str) -> List[str]:
    arms = [a for a in runs if any(policy in r["final"] for r in runs[a])]
    lines = [f"| task ({policy}, 100 episodes per task) | teacher | " + " | ".join(arms) + " |",
             "|---|---|" + "---|" * len(arms)]
    for task, t_score in list(teacher["tasks"].items()) + [("suite score", teacher["suite"])]:
        cells = []
        for arm in arms:
            done = [r["final"][policy] for r in runs[arm] if policy in r["final"]]
            cells.append(ci_text([d["suite"] if task == "suite score" else d["tasks"].get(task) for d in done]))
        lines.append(f"| {task} | {t_score:.1f} | " + " | ".join(cells) + " |")
    seeds = ", ".join(f"{a}: {sum(policy in r['final'] for r in runs[a])}" for a in arms)
    return lines + ["", f"Seeds per arm: {seeds}. Mean over seeds [95 % bootstrap CI over seeds]."]


def curve_table(runs: Dict[str, List[dict]], marks: np.ndarray, every: int) -> List[str]:
    shown = [i for i in range(len(marks)) if int(marks[i]) % every == 0]
    lines = ["| training suite score | " + " | ".join(f"{marks[i] / 1e6:g}M" for i in shown) + " |",
             "|---|" + "---|" * len(shown)]
    for arm, rs in runs.items():
        curves = arm_curves(rs)
        lines.append(f"| {arm} | " + " | ".join(ci_text(curves[:, i]) for i in shown) + " |")
    return lines


def per_task_curves(runs: Dict[str, List[dict]], marks: np.ndarray, every: int, key: str = "train_tasks",
                    what: str = "training", digits: int = 0) -> List[str]:
    """Per arm and task, a run entry `key` ({task: values at the marks}) every `every` frames: mean; min over seeds."""
    shown = [i for i in range(len(marks)) if int(marks[i]) % every == 0]
    lines = [f"| arm / task ({what}, mean over seeds; min over seeds) | "
             + " | ".join(f"{marks[i] / 1e6:g}M" for i in shown) + " |", "|---|" + "---|" * len(shown)]
    for arm, rs in runs.items():
        tasks = sorted({t for r in rs for t in r.get(key, {})})
        for task in tasks:
            c = np.array([r[key].get(task, np.full(len(marks), np.nan)) for r in rs], dtype=float)
            cells = [f"{np.nanmean(c[:, i]):.{digits}f}; {np.nanmin(c[:, i]):.{digits}f}"
                     if np.isfinite(c[:, i]).any() else "–" for i in shown]
            lines.append(f"| {arm} / {task} | " + " | ".join(cells) + " |")
    return lines


def collapse_lines(events: Dict[str, List[dict]]) -> List[str]:
    lines = ["| run | at | suite before → after | task (its fall) | entropy | grad norm | KL(behaviour) | largest ratio | "
             "fraction clipped | lr | Adam max 2nd moment | policy lag |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, evs in events.items():
        for e in evs:
            d = e["diagnostics"]
            cell = lambda tag: (f"{d[tag]['window']:.3g} ({d[tag]['run_median']:.3g})" if tag in d else "–")  # noqa
            lines.append(f"| {name} | {e['at'] / 1e6:g}M | {e['before']:.1f} → {e['after']:.1f} | {e['task']} "
                         f"({e['task_drop']:.0f}) | " + " | ".join(cell(t) for t in (
                             "train/entropy", "train/grad_norm", "train/kl_divergence", "train/ratio_max",
                             "train/fraction_clipped", "train/lr", "train/adam_max_second_moment",
                             "train/version_diff_avg")) + " |")
    return lines


def figure(runs: Dict[str, List[dict]], marks: np.ndarray, teacher: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for arm, rs in runs.items():
        c = arm_curves(rs)
        for ax, key in ((axes[0], "train"),):
            line, = ax.plot(marks / 1e6, np.nanmean(c, axis=0), label=f"{arm} ({len(rs)} seeds)")
            ax.fill_between(marks / 1e6, np.nanmin(c, axis=0), np.nanmax(c, axis=0), alpha=0.15,
                            color=line.get_color())
        for r in rs:
            if r["eval"] is not None:
                axes[1].plot(np.asarray(r["eval_steps"]) / 1e6, r["eval"], color=line.get_color(), alpha=0.6)
    for ax, title in zip(axes, ("training suite score (mean, min–max over seeds)", "periodic evaluation (each seed)")):
        ax.axhline(teacher["suite"], color="k", ls="--", lw=1, label="teacher (100-episode eval)")
        ax.set_xlabel("env frames (M)")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def analyze(args) -> dict:
    marks = np.arange(args.mark, args.frames + 1, args.mark, dtype=float)
    teacher = teacher_scores()
    runs, names = {}, {}
    for arm in args.arms:
        for seed in args.seeds:
            view = open_run(os.path.join(args.train_dir, exp_name(arm, seed)), args.records, RECORD_TAGS,
                            train_dir=args.train_dir)
            run = read_run(view, marks, args.mark / 2)
            if run is not None:
                runs.setdefault(arm, []).append(run)
                names.setdefault(arm, []).append(exp_name(arm, seed))
    events = {n: collapses(r, marks, args.collapse_drop)
              for arm in runs for n, r in zip(names[arm], runs[arm])}
    result = dict(teacher=teacher, frames=args.frames, seeds=names, collapses=events,
                  eval_max_drop={n: max_eval_drop_after_reaching(r, teacher["suite"])
                                 for arm in runs for n, r in zip(names[arm], runs[arm])},
                  brake={n: r["brake"] for arm in runs for n, r in zip(names[arm], runs[arm])},
                  eval_max_drop_anywhere={n: max_eval_drop_after_reaching(r, -np.inf)
                                          for arm in runs for n, r in zip(names[arm], runs[arm])})
    done = {arm: [r for r in rs if r["final"]] for arm, rs in runs.items()}  # only finished (evaluated) runs count
    if done.get(args.main_arm) and done.get(args.scratch_arm):
        result["checks"] = {p: checks(done[args.main_arm], done[args.scratch_arm], teacher, marks, p) for p in POLICIES}
    write_report(args, runs, marks, teacher, result)
    return result


def write_report(args, runs, marks, teacher, result) -> None:
    os.makedirs(args.out, exist_ok=True)
    lines = [f"# Main job over seeds ({args.frames / 1e6:g}M frames)", "",
             "`python -m benchmarks.main_job " + " ".join(sys.argv[1:]) + "`", ""]
    for policy in POLICIES:
        lines += final_table(runs, teacher, policy) + [""]
    lines += curve_table(runs, marks, args.table_every) + ["", "Per task (normalised score, capped at 100 in the "
                                                               "suite score):", ""]
    lines += per_task_curves(runs, marks, args.table_every)
    lines += ["", "Per-task policy entropy (`train/task_entropy/<task>`, runs that log it; ln 7 = 1.95 is a uniform "
                  "policy):", ""]
    lines += per_task_curves(runs, marks, args.table_every, "task_entropy", "entropy", 2)
    lines += ["", f"Collapses (training suite score falls more than {args.collapse_drop:g} points between two "
                  f"{args.mark / 1e3:g}K marks); diagnostics: the window's mean (the run's median)", ""]
    lines += collapse_lines(result["collapses"]) + ["", "Largest fall of the periodic evaluation between two reports "
                                                        "after first reaching the teacher's score: "
                                                    + ", ".join(f"{n} {v if v is None else round(v, 1)}"
                                                                for n, v in result["eval_max_drop"].items()),
              "", "... and anywhere in the run: " + ", ".join(f"{n} {v if v is None else round(v, 1)}"
                                                        for n, v in result["eval_max_drop_anywhere"].items()), "",
              "Learning-rate brake (share of summaries with train/lr under 0.99 × the schedule's rate; lowest ratio; "
              "median train/kl_divergence; share of summaries above 0.016): "
              + ", ".join(f"{n} {b['braked_share']:.1%}, {b['lowest_ratio']:.2f}, {b['median_kl']:.2g}, "
                          f"{b['kl_over_2x_threshold_share']:.1%}" for n, b in result["brake"].items() if b), ""]
    for policy, c in result.get("checks", {}).items():
        lines.append(f"Checks ({args.main_arm} vs {args.scratch_arm}, final {policy}): "
                     + "; ".join(f"{k}: {'yes' if v['ok'] else 'NO'}" for k, v in c.items()))
    with open(os.path.join(args.out, "main_job_cpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "main_job_cpu.json"), "w") as f:
        json.dump(result, f, indent=1, default=lambda o: None)
    if runs:
        figure(runs, marks, teacher, os.path.join(args.out, "main_job_curves.png"))
    print("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default="scratch_const,ks_main,scratch_fixed", type=lambda s: s.split(","))
    ap.add_argument("--seeds", default="0,1,2", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--frames", type=int, default=4_000_000)
    ap.add_argument("--eval_every", type=int, default=500_000)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--mark", type=int, default=250_000, help="curve resolution (frames)")
    ap.add_argument("--table_every", type=int, default=500_000)
    ap.add_argument("--collapse_drop", type=float, default=15.0)
    ap.add_argument("--main_arm", default="ks_main")
    ap.add_argument("--scratch_arm", default="scratch_fixed")
    ap.add_argument("--train_dir", default=os.path.join(REPO_ROOT, "bench_out", "main_job"))
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "benchmarks", "results"))
    ap.add_argument("--records", default=None, help="where each finished run's record is kept (default: "
                                                     "OUT/main_job_runs, i.e. benchmarks/results/main_job_runs)")
    ap.add_argument("--analyze_only", action="store_true")
    args = ap.parse_args(argv)
    args.records = args.records or os.path.join(args.out, "main_job_runs")
    if not args.analyze_only:
        for seed in args.seeds:
            for arm in args.arms:
                run_one(args, arm, seed)
    export_records(args)
    analyze(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
