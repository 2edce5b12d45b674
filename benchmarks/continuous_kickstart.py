"""Kickstarting for continuous control (issue 21, item 5): a small full-state MuJoCo teacher kickstarts a larger
student, and a full-state (privileged) teacher kickstarts a partially observed recurrent student; 3 seeds, 95 %
bootstrap CIs over seeds (`sf_kickstart.stats`).

    python -m benchmarks.continuous_kickstart                      # the whole grid (defaults: 66 min on 2 cores)
    python -m benchmarks.continuous_kickstart --analyze_only       # the tables and figure from the runs / records
    python -m benchmarks.continuous_kickstart --teacher_dirs=mujoco_halfcheetah=zoo:mujoco_halfcheetah_small

(a) Small teacher -> larger student, on each of --tasks (`mujoco_halfcheetah` and `mujoco_hopper`. Hopper rather than
    Walker2d or Ant: the same kind of reward (forward velocity plus an alive bonus, the episode ends when it falls)
    with the fewest degrees of freedom (3 actuators and 11 observations, against 6 and 17 or 8 and 27), so SF's PPO
    setup gets a useful teacher in the fewest frames; its early terminations give many episodes, hence a dense return
    curve from the first thousands of frames (the tiny e2e test runs on it); and its velocity-hidden variant is a
    standard POMDP benchmark, like HalfCheetah's). The teacher is `cfg/mujoco_small_teacher.yaml` (MLP 64x64), trained
    here for --teacher_frames (seed --teacher_seed), or an existing experiment dir / zoo teacher given per task by
    --teacher_dirs. The students are `cfg/mujoco_large_student.yaml` (MLP 256x256x256), --student_frames each:
      scratch            from scratch
      ks_linear_ce       --kickstart_schedule=linear (λ --ks_lambda -> 0 at --ks_end_frames),
                         --kickstart_loss=cross_entropy
      ks_linear_mse      the same, --kickstart_loss=mse_mean (rsl_rl/skrl's behaviour loss on the action mean)
      ks_adaptive_ce     --kickstart_schedule=adaptive (λ until the student matches the teacher's score G_T)
      ks_adaptive_mse    adaptive, mse_mean
      ks_linear_ce_std1  ks_linear_ce with --kickstart_init_stddev=False: the student's learned std starts at Sample
                         Factory's 1, not at the teacher's (the presets' --kickstart_init_stddev=True)
    Adaptive λ reads G_T from the teacher's evaluation cache: `python -m sf_kickstart.evaluate TEACHER --no_teachers`
    (greedy, --eval_episodes; run here first when the cache is missing; a zoo teacher ships its own).
(b) Privileged teacher -> partially observed student, on each of --pomdp_tasks: the same full-state teacher of
    `mujoco_<task>` reads the privileged key (`--teacher_obs_map=obs:state`) and kickstarts
    `cfg/mujoco_pomdp_student.yaml` (MLP 256x256 + GRU 128, `--student_obs_keys=obs`: no velocities) on
    `mujoco_<task>_pomdp`, --pomdp_frames each:
      pomdp_scratch      from scratch
      pomdp_ks           linear λ, cross_entropy
      pomdp_ks_value     the same plus value distillation (--kickstart_value_coeff=--value_coeff)

Definitions (what the tables and floors measure):
  * A run's *return curve* is Sample Factory's `reward/reward` summary: the mean raw return of the policy's last
    --stats_avg finished training episodes (sampled actions), written every summary once that many have ended. For the
    MuJoCo envs it equals `policy_stats/avg_true_objective` (SF's true objective defaults to the episode return). Every
    run here gets the same --stats_avg (32 by default: SF's 100 would average over ~100K frames of 1000-step
    episodes with 16 envs, a lag as long as a student's budget).
  * The *teacher's final return* R_T is the last point of the teacher's own return curve (the end of its training),
    and *the frames the teacher took* F_T is the first step at which that curve reached R_T (<= its budget). A teacher
    without a curve (a zoo teacher ships no events) uses its --eval_episodes evaluation with sampled actions, the
    curve's policy, as R_T and its trained frames as F_T (an upper bound).
  * A run *reaches* R_T at the first summary whose return curve is >= R_T (`report.analysis.first_reach`); one that
    never does within its budget counts as "> budget", and its arm's mean is not computed.
  * A run's *final return* is the last point of its return curve.
  * Floor 1 (per task and kickstarted arm): yes when every seed reaches R_T and the mean over seeds of the frames to
    reach it is <= F_T / 3.
  * Floor 2 (per pomdp task and kickstarted arm): yes when the mean final return is >= 50 % above the mean final
    return of `pomdp_scratch`, i.e. 100·(mean − mean_scratch) / |mean_scratch| >= 50 (its CI: `stats.improvement_ci`).

Runs are done one at a time, teachers first, then the students seed-major (every arm of seed 0, then seed 1, ...); a
run whose latest checkpoint holds its budget is skipped, an unfinished one resumes from its last checkpoint (SF's
resume, the kickstart state with it), so the script can be stopped and started again. A run that fails is reported
and retried on the next invocation. Each finished run (and each teacher, with its evaluations) is also kept as a run
record, `--records/<experiment>.json` (`benchmarks/run_records`: its return curve, config, trained frames and
evaluations; committed): a run with a finished record is skipped too, and analysed from its record when its
experiment dir is not on this machine, so seeds run in different sessions are reported together (a teacher trained
here is still needed on disk while any of its students trains). Every invocation, `--analyze_only` too, writes the
records of finished runs on disk that have none yet. Output: --out/continuous_kickstart_cpu.md and .json, and the
curves figure continuous_kickstart_curves.png (mean over seeds, 95 % bootstrap band).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

from benchmarks.multiteacher_efficiency import evaluate_teachers
from benchmarks.run_records import RunRecord, open_run, reached, record_of, record_path, run_name, save_record
from sf_kickstart import tags
from sf_kickstart.errors import ExperimentError
from sf_kickstart.events import Series
from sf_kickstart.experiments import resolve_experiment_dir, trained_frames
from sf_kickstart.paths import REPO_ROOT
from sf_kickstart.processes import run_train
from sf_kickstart.report.analysis import first_reach, mean_curve
from sf_kickstart.stats import improvement_ci, mean_ci
from sf_kickstart.suites.mujoco import ENV_PREFIX, POMDP_SUFFIX

RETURN_TAG = tags.REWARD  # reward/reward
RECORD_TAGS = (RETURN_TAG,)  # what the analysis reads of a run's summaries
FULL_ARMS = ("scratch", "ks_linear_ce", "ks_linear_mse", "ks_adaptive_ce", "ks_adaptive_mse", "ks_linear_ce_std1")
POMDP_ARMS = ("pomdp_scratch", "pomdp_ks", "pomdp_ks_value")
SCRATCH = {"full": "scratch", "pomdp": "pomdp_scratch"}
REACH_FRACTION = 1.0 / 3.0  # floor 1: reach R_T in <= F_T / 3
MIN_GAIN_PCT = 50.0  # floor 2: >= 50 % above the pomdp student from scratch
PRESETS = {"teacher": "mujoco_small_teacher.yaml", "full": "mujoco_large_student.yaml",
           "pomdp": "mujoco_pomdp_student.yaml"}


# ---------------------------------------------------------------------------------------------------- the grid
def short(task: str) -> str:
    """mujoco_halfcheetah -> halfcheetah."""
    return task[len(ENV_PREFIX):] if task.startswith(ENV_PREFIX) else task


def teacher_name(task: str) -> str:
    return f"teacher_{short(task)}"


def exp_name(task: str, arm: str, seed: int) -> str:
    """halfcheetah_ks_linear_ce_s0, halfcheetah_pomdp_ks_s1, ..."""
    return f"{short(task)}_{arm}_s{seed}"


def kind_of(arm: str) -> str:
    return "pomdp" if arm in POMDP_ARMS else "full"


def arm_flags(arm: str, teacher: str, args) -> List[str]:
    """The train flags of an arm (besides preset, env, experiment, seed, budget)."""
    if arm in SCRATCH.values():
        return []
    ks = [f"--teacher={teacher}", f"--kickstart_lambda={args.ks_lambda}"]
    if kind_of(arm) == "pomdp":
        ks += ["--teacher_obs_map=obs:state", "--kickstart_schedule=linear", "--kickstart_loss=cross_entropy",
               f"--kickstart_end_frames={args.pomdp_ks_end_frames}"]
        return ks + ([f"--kickstart_value_coeff={args.value_coeff}"] if arm == "pomdp_ks_value" else [])
    _, schedule, loss, *std1 = arm.split("_")
    ks += [f"--kickstart_schedule={schedule}", f"--kickstart_loss={'mse_mean' if loss == 'mse' else 'cross_entropy'}"]
    ks += ["--kickstart_init_stddev=False"] if std1 else []  # the presets' True: the student's std starts at 1
    return ks + ([f"--kickstart_end_frames={args.ks_end_frames}"] if schedule == "linear" else [])


def student_plan(args) -> List[dict]:
    """Every student run, seed-major: dict(task (the full-state task), env, arm, seed, name, preset, frames)."""
    plan = []
    for seed in args.seeds:
        for kind, tasks, arms in (("full", args.tasks, FULL_ARMS), ("pomdp", args.pomdp_tasks, POMDP_ARMS)):
            for task in tasks:
                for arm in (a for a in arms if a in args.arms):
                    plan.append(dict(task=task, env=task + (POMDP_SUFFIX if kind == "pomdp" else ""), arm=arm,
                                     seed=seed, name=exp_name(task, arm, seed), preset=PRESETS[kind],
                                     frames=args.pomdp_frames if kind == "pomdp" else args.student_frames))
    return plan


def finished(exp_dir: str, frames: int, records_dir: Optional[str] = None) -> bool:
    """The run's latest checkpoint, or its record, holds its budget (Sample Factory stops at or just past it)."""
    return reached(exp_dir, records_dir, frames, trained_frames, lambda record: record.trained_frames)


def save_run(args, exp_dir: str) -> None:
    """Write the record of a run (or a teacher) from its dir."""
    save_record(exp_dir, record_path(args.records, run_name(exp_dir)), RECORD_TAGS, train_dir=args.train_dir)


def view(args, exp_dir: str) -> Optional[RunRecord]:
    """A run as the analysis reads it: from its dir when on this machine, else from its record (None: neither)."""
    return open_run(exp_dir, args.records, RECORD_TAGS, train_dir=args.train_dir)


def train(args, name: str, frames: int, flags: Sequence[str]) -> Optional[str]:
    """One run to its budget (resumed when unfinished, skipped when done), its record saved; the error text when it
    failed."""
    exp_dir = os.path.join(args.train_dir, name)
    if finished(exp_dir, frames, args.records):
        print(f"[continuous_kickstart] {name}: done, skipped", flush=True)
        return None
    print(f"[continuous_kickstart] {name}: training to {frames} frames", flush=True)
    try:
        run_train([*flags, f"--experiment={name}", f"--train_dir={args.train_dir}", f"--train_for_env_steps={frames}",
                   f"--stats_avg={args.stats_avg}", *args.extra],
                  log_path=os.path.join(args.train_dir, f"{name}.log"), check=True, append=True)
    except RuntimeError as exc:
        print(f"[continuous_kickstart] {name}: FAILED ({exc})", flush=True)
        return str(exc)
    save_run(args, exp_dir)
    return None


def tasks_of(args) -> List[str]:
    """Every task that needs a teacher, once."""
    return list(dict.fromkeys([*args.tasks, *args.pomdp_tasks]))


def teacher_dir(args, task: str) -> str:
    """The experiment dir of a task's teacher: given by --teacher_dirs (a dir, zoo:NAME, hf://...: resolved), else
    trained here. It may not be on this machine (then only its record may be)."""
    given = args.teacher_dirs.get(task)
    if given is None:
        return os.path.join(args.train_dir, teacher_name(task))
    try:
        return resolve_experiment_dir(given, args.train_dir)
    except ExperimentError:
        return given


def needs_teacher(args, task: str) -> bool:
    """Some kickstarted student of the task has still to train."""
    return any(r["task"] == task and r["arm"] not in SCRATCH.values()
               and not finished(os.path.join(args.train_dir, r["name"]), r["frames"], args.records)
               for r in student_plan(args))


def teacher_dirs(args) -> Dict[str, str]:
    """task -> its teacher as the students' --teacher names it: given by --teacher_dirs, else trained here; a teacher
    finished in another session whose dir is not on this machine is left out while no student needs it."""
    teachers = {}
    for task in tasks_of(args):
        if task in args.teacher_dirs:
            teachers[task] = args.teacher_dirs[task]
            continue
        name, exp_dir = teacher_name(task), teacher_dir(args, task)
        error = train(args, name, args.teacher_frames, [f"--preset={PRESETS['teacher']}", f"--env={task}",
                                                        f"--seed={args.teacher_seed}"])
        if error:
            raise SystemExit(f"teacher {name} failed: {error}")
        if os.path.isdir(exp_dir):
            teachers[task] = exp_dir
        elif needs_teacher(args, task):
            raise SystemExit(f"teacher {name} finished in another session (its record: "
                             f"{record_path(args.records, name)}) but its checkpoint is not in {exp_dir}, and students "
                             f"of {task} still need it: restore it, give --teacher_dirs={task}=DIR, or delete the "
                             "record to train it again (the students run so far then had another teacher)")
    return teachers


def run_grid(args) -> Dict[str, str]:
    """Teachers, their evaluations (adaptive λ's G_T; R_T of a teacher without a curve) and records, then every
    student."""
    teachers = teacher_dirs(args)
    dirs = {t: resolve_experiment_dir(d, args.train_dir) for t, d in teachers.items()}
    if any(a.startswith("ks_adaptive") for a in args.arms):
        evaluate_teachers([dirs[t] for t in args.tasks if t in dirs], args.eval_episodes, train_dir=args.train_dir)
    curveless = [d for d in dirs.values() if return_curve(view(args, d)) is None]
    evaluate_teachers(curveless, args.eval_episodes, policy="sampled", train_dir=args.train_dir)
    for exp_dir in dirs.values():
        save_run(args, exp_dir)
    failures = {}
    for run in student_plan(args):
        flags = [f"--preset={run['preset']}", f"--env={run['env']}", f"--seed={run['seed']}",
                 *arm_flags(run["arm"], teachers.get(run["task"]), args)]
        error = train(args, run["name"], run["frames"], flags)
        if error:
            failures[run["name"]] = error
    return failures


# ---------------------------------------------------------------------------------------------------- analysis
def return_curve(run: Optional[RunRecord]) -> Optional[Series]:
    """The run's `reward/reward` curve (None: no such summary yet, or no run)."""
    series = None if run is None else run.scalars.get(RETURN_TAG)
    return series if series is not None and len(series) else None


def final_return(curve: Optional[Series]) -> Optional[float]:
    return None if curve is None else float(curve.values[-1])


def frames_to_reach(curve: Optional[Series], threshold: Optional[float]) -> Optional[float]:
    """First step whose return is >= threshold (None: never, or no curve)."""
    if curve is None or threshold is None:
        return None
    return first_reach(curve.steps, curve.values, threshold)


def teacher_reference(curve: Optional[Series], trained: Optional[int], sampled_return: Optional[float]) -> dict:
    """R_T and F_T (module docstring): from the teacher's own return curve, else its sampled evaluation and frames."""
    if curve is not None:
        final = final_return(curve)
        return dict(final_return=final, frames=frames_to_reach(curve, final), source="training curve")
    return dict(final_return=sampled_return, frames=None if trained is None else float(trained),
                source="sampled evaluation; frames: its trained frames (upper bound)")


def ci_stat(values: Sequence[Optional[float]]) -> dict:
    """mean and 95 % bootstrap CI over the finite values (CI None with fewer than 2)."""
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    return dict(n=len(v), mean=float(np.mean(v)) if v else None, ci=mean_ci(v))


def summarize_arm(runs: List[dict], threshold: Optional[float]) -> dict:
    """Per arm: frames to `threshold` per seed (None: never), their mean/CI when every seed reached it, final returns
    and their mean/CI. `runs`: dict(seed, curve, frames)."""
    reach = [frames_to_reach(r["curve"], threshold) for r in runs]
    finals = [final_return(r["curve"]) for r in runs]
    all_reached = bool(runs) and all(x is not None for x in reach)
    return dict(seeds=[r["seed"] for r in runs], reach=reach, reached=sum(x is not None for x in reach),
                reach_stat=ci_stat(reach) if all_reached else None, finals=finals, final_stat=ci_stat(finals),
                budgets=[r["frames"] for r in runs])


def reach_floor(reach: Sequence[Optional[float]], teacher_frames: Optional[float],
                fraction: float = REACH_FRACTION) -> dict:
    """Floor 1: every seed reaches R_T and the mean frames to it are <= fraction · F_T."""
    limit = None if teacher_frames is None else fraction * teacher_frames
    reached = [x for x in reach if x is not None]
    mean = float(np.mean(reached)) if reached and len(reached) == len(reach) else None
    ok = limit is not None and mean is not None and mean <= limit
    within = sum(1 for x in reached if limit is not None and x <= limit)
    return dict(ok=bool(ok), limit=limit, mean=mean, reached=len(reached), within=within, n=len(reach))


def gain_floor(finals: Sequence[Optional[float]], baseline: Sequence[Optional[float]],
               min_gain_pct: float = MIN_GAIN_PCT) -> dict:
    """Floor 2: 100·(mean(finals) − mean(baseline)) / |mean(baseline)| >= min_gain_pct (its CI: improvement_ci)."""
    m = [float(x) for x in finals if x is not None]
    b = [float(x) for x in baseline if x is not None]
    if not m or not b or np.mean(b) == 0:
        return dict(ok=False, gain_pct=None, ci=None, n=len(m), n_baseline=len(b))
    gain = 100.0 * (np.mean(m) - np.mean(b)) / abs(np.mean(b))
    return dict(ok=bool(gain >= min_gain_pct), gain_pct=float(gain), ci=improvement_ci(m, b), n=len(m),
                n_baseline=len(b))


def load_runs(args) -> Dict[str, Dict[str, List[dict]]]:
    """panel (the student env) -> arm -> [dict(seed, curve, frames)] of the runs on disk or in records."""
    panels: Dict[str, Dict[str, List[dict]]] = {}
    for run in student_plan(args):
        arms = panels.setdefault(run["env"], {}).setdefault(run["arm"], [])
        found = view(args, os.path.join(args.train_dir, run["name"]))
        if found is not None:
            arms.append(dict(seed=run["seed"], curve=return_curve(found), frames=found.trained_frames))
    return panels


def teacher_view(args, task: str) -> Optional[RunRecord]:
    """A task's teacher through `view`; one read from its dir also takes from its record the evaluations this machine
    lacks (a zoo teacher's sampled one is written under the train_dir of the session that made it)."""
    exp_dir = teacher_dir(args, task)
    teacher, saved = view(args, exp_dir), record_of(args.records, exp_dir)
    if teacher is not None and saved is not None:
        teacher.scores = {**saved.scores, **teacher.scores}
    return teacher


def teacher_summary(teacher: Optional[RunRecord]) -> dict:
    """R_T, F_T, trained frames and the greedy evaluation of a teacher (all None for one neither on disk nor in
    records)."""
    if teacher is None:
        return dict(final_return=None, frames=None, source="not on disk", name="–", path="–", trained_frames=None,
                    greedy=None)
    greedy, sampled = teacher.scores.get("greedy"), teacher.scores.get("sampled")
    ref = teacher_reference(return_curve(teacher), teacher.trained_frames,
                            None if sampled is None else float(sampled["suite_score"]))
    return dict(ref, name=teacher.name, path=teacher.source, trained_frames=teacher.trained_frames,
                greedy=None if greedy is None else dict(mean=greedy["suite_score"], ci=greedy["suite_score_ci"],
                                                         episodes=greedy["episodes"]))


def export_records(args) -> None:
    """Records for the finished runs and teachers on disk that have none yet (finished before records were kept)."""
    teachers = [(teacher_dir(args, t), 0 if t in args.teacher_dirs else args.teacher_frames) for t in tasks_of(args)]
    students = [(os.path.join(args.train_dir, r["name"]), r["frames"]) for r in student_plan(args)]
    for exp_dir, frames in teachers + students:
        if finished(exp_dir, frames) and not os.path.isfile(record_path(args.records, run_name(exp_dir))):
            save_run(args, exp_dir)


def analyze(args, failures: Dict[str, str]) -> dict:
    """Every number of the report: teachers, per panel and arm the summaries, the floors."""
    teachers = {t: teacher_summary(teacher_view(args, t)) for t in tasks_of(args)}
    panels = load_runs(args)
    result = dict(args={k: v for k, v in vars(args).items()}, teachers=teachers, panels={}, floors=[],
                  failures=failures)
    for env, arms in panels.items():
        kind = "pomdp" if env.endswith(POMDP_SUFFIX) else "full"
        task = env[: -len(POMDP_SUFFIX)] if kind == "pomdp" else env
        ref = teachers[task]
        summaries = {arm: summarize_arm(runs, ref["final_return"]) for arm, runs in arms.items()}
        scratch = summaries.get(SCRATCH[kind])
        for arm, s in summaries.items():
            baseline = None if scratch is None or arm == SCRATCH[kind] else scratch["finals"]
            s["vs_scratch"] = None if baseline is None else gain_floor(s["finals"], baseline)
            if arm in SCRATCH.values():
                continue
            if kind == "full":
                result["floors"].append(dict(kind="reach", env=env, arm=arm, **reach_floor(s["reach"], ref["frames"])))
            else:
                result["floors"].append(dict(kind="gain", env=env, arm=arm,
                                             **gain_floor(s["finals"], scratch["finals"] if scratch else [])))
        result["panels"][env] = dict(kind=kind, task=task, arms=summaries)
    return dict(result, curves=panels)


# ---------------------------------------------------------------------------------------------------- report
def fmt(x: Optional[float], digits: int = 0) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def frames_text(x: Optional[float]) -> str:
    """Frames as the tables show them: 95000 -> 95K, 3072 -> 3072."""
    return "–" if x is None else f"{x / 1e3:.0f}K" if x >= 1e4 else f"{x:.0f}"


def stat_text(stat: Optional[dict], show=fmt) -> str:
    """'mean [lo, hi]' (one seed: the mean alone, it has no interval)."""
    if not stat or stat["mean"] is None:
        return "–"
    if stat["ci"] is None:
        return show(stat["mean"])
    return f"{show(stat['mean'])} [{show(stat['ci'][0])}, {show(stat['ci'][1])}]"


def gain_text(g: Optional[dict]) -> str:
    if not g or g["gain_pct"] is None:
        return "–"
    ci = "" if g["ci"] is None else f" [{g['ci'][0]:+.0f}, {g['ci'][1]:+.0f}]"
    return f"{g['gain_pct']:+.0f} %{ci}"


def reach_text(s: dict) -> str:
    """'mean [CI] (k/n)' when every seed reached R_T, else '> budget (k/n)'."""
    if s["reach_stat"] is not None:
        return f"{stat_text(s['reach_stat'], frames_text)} ({s['reached']}/{len(s['reach'])})"
    budget = max((b for b in s["budgets"] if b), default=None)
    return f"> {frames_text(budget)} ({s['reached']}/{len(s['reach'])})" if s["reach"] else "–"


def arm_rows(panel: dict, arms: Sequence[str], ref: dict) -> List[str]:
    lines = ["| arm | seeds | frames to R_T (seeds that reached it) | F_T / those frames | final return | vs scratch |",
             "|---|---|---|---|---|---|"]
    for arm in arms:
        s = panel["arms"].get(arm)
        if s is None or not s["seeds"]:
            lines.append(f"| {arm} | 0 | not run | – | – | – |")
            continue
        mean = s["reach_stat"]["mean"] if s["reach_stat"] else None
        speed = f"{ref['frames'] / mean:.1f}×" if mean and ref["frames"] else "–"
        lines.append(f"| {arm} | {len(s['seeds'])} | {reach_text(s)} | {speed} | {stat_text(s['final_stat'])} | "
                     f"{gain_text(s['vs_scratch'])} |")
    return lines


def teacher_lines(teachers: Dict[str, dict]) -> List[str]:
    lines = ["| task | teacher | trained frames | R_T (final return) | F_T (frames to R_T) | R_T source | "
             "greedy evaluation (G_T of adaptive λ) |", "|---|---|---|---|---|---|---|"]
    for task, t in teachers.items():
        g = t["greedy"]
        greedy = "–" if g is None else f"{fmt(g['mean'])} [{fmt(g['ci'][0])}, {fmt(g['ci'][1])}] ({g['episodes']} ep.)"
        lines.append(f"| {task} | `{t['name']}` | {t['trained_frames'] or '–'} | "
                     f"{fmt(t['final_return'])} | {frames_text(t['frames'])} | {t['source']} | {greedy} |")
    return lines


def floor_lines(floors: List[dict]) -> List[str]:
    lines = []
    for f in floors:
        yes = "yes" if f["ok"] else "NO"
        if not f["n"]:
            what = "reaches R_T in ≤ 1/3 of F_T" if f["kind"] == "reach" else "final return ≥ 50 % above pomdp_scratch"
            lines.append(f"- Floor {1 if f['kind'] == 'reach' else 2}, {f['env']} {f['arm']}: {what}: **not measured** "
                         "(no run)")
        elif f["kind"] == "reach":
            lines.append(f"- Floor 1, {f['env']} {f['arm']}: reaches the teacher's final return in ≤ 1/3 of the "
                         f"teacher's frames (≤ {frames_text(f['limit'])}): **{yes}** (mean {frames_text(f['mean'])}; "
                         f"{f['reached']}/{f['n']} seeds reached it, {f['within']}/{f['n']} within the limit)")
        else:
            lines.append(f"- Floor 2, {f['env']} {f['arm']}: final return ≥ 50 % above pomdp_scratch: **{yes}** "
                         f"({gain_text(f)}; {f['n']} vs {f['n_baseline']} seeds)")
    return lines


def render(result: dict, argv: Sequence[str]) -> str:
    a = result["args"]
    lines = ["# Kickstarting for continuous control (issue 21)", "",
             "`python -m benchmarks.continuous_kickstart " + " ".join(argv) + "`", "",
             f"Return: SF's `{RETURN_TAG}`, the mean raw return of the last {a['stats_avg']} training episodes. "
             "R_T: the "
             "teacher's final return; F_T: the frames its own curve took to reach R_T; a student reaches R_T at its "
             "first summary ≥ R_T. Mean over seeds [95 % bootstrap CI over seeds]; 'vs scratch': "
             "100·(mean − mean scratch) / |mean scratch| [CI]. Definitions: the script's docstring.", "",
             "## Teachers (small preset, full state)", ""] + teacher_lines(result["teachers"])
    for env, panel in result["panels"].items():
        ref = result["teachers"][panel["task"]]
        if panel["kind"] == "full":
            title = f"## (a) {env}: small teacher → large student ({a['student_frames']} frames)"
            arms = [x for x in FULL_ARMS if x in a["arms"]]
        else:
            title = (f"## (b) {env}: privileged full-state teacher → partially observed recurrent student "
                     f"({a['pomdp_frames']} frames)")
            arms = [x for x in POMDP_ARMS if x in a["arms"]]
        lines += ["", title, "", f"R_T = {fmt(ref['final_return'])}, F_T = {frames_text(ref['frames'])}", ""]
        lines += arm_rows(panel, arms, ref)
    lines += ["", "## Floors", ""] + floor_lines(result["floors"])
    if result["failures"]:
        lines += ["", "Failed runs (retried on the next invocation): " + ", ".join(
            f"{n} ({e})" for n, e in result["failures"].items())]
    return "\n".join(lines) + "\n"


def figure(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(result["panels"].items())
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.2 * max(1, len(panels)), 4.0), squeeze=False)
    for ax, (env, panel) in zip(axes[0], panels):
        ref = result["teachers"][panel["task"]]
        for arm, runs in result["curves"][env].items():
            curve = mean_curve([r["curve"] for r in runs if r["curve"] is not None])
            if len(curve.steps):
                line, = ax.plot(curve.steps / 1e3, curve.mean, label=f"{arm} ({len(runs)})")
                ax.fill_between(curve.steps / 1e3, curve.lo, curve.hi, alpha=0.15, color=line.get_color())
        if ref["final_return"] is not None:
            ax.axhline(ref["final_return"], color="k", ls="--", lw=1, label="teacher's final return R_T")
        if ref["frames"] and panel["kind"] == "full":
            ax.axvline(ref["frames"] * REACH_FRACTION / 1e3, color="k", ls=":", lw=1, label="F_T / 3")
        ax.set_title(env)
        ax.set_xlabel("env frames (K)")
        ax.set_ylabel(f"{RETURN_TAG} (mean, 95 % band over seeds)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def jsonable(result: dict) -> dict:
    """The result without Series: each run's curve as [[step, return], ...]."""
    curves = {env: {arm: [dict(r, curve=None if r["curve"] is None else np.stack([r["curve"].steps, r["curve"].values],
                                                                                 axis=1).tolist()) for r in runs]
                    for arm, runs in arms.items()} for env, arms in result["curves"].items()}
    return dict(result, curves=curves)


def write_report(result: dict, out: str, argv: Sequence[str]) -> str:
    os.makedirs(out, exist_ok=True)
    text = render(result, argv)
    with open(os.path.join(out, "continuous_kickstart_cpu.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "continuous_kickstart_cpu.json"), "w") as f:
        json.dump(jsonable(result), f, indent=1, default=lambda o: None)
    if result["panels"]:
        figure(result, os.path.join(out, "continuous_kickstart_curves.png"))
    return text


# ---------------------------------------------------------------------------------------------------- command line
def comma_list(text: str) -> List[str]:
    return [x for x in text.split(",") if x]


def task_map(text: str) -> Dict[str, str]:
    """'mujoco_halfcheetah=zoo:NAME,mujoco_hopper=/dir' -> {task: dir}."""
    out = {}
    for item in comma_list(text):
        task, sep, path = item.partition("=")
        if not sep or not path:
            raise argparse.ArgumentTypeError(f"--teacher_dirs: expected TASK=DIR, got {item!r}")
        out[task] = path
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=comma_list, default="mujoco_halfcheetah,mujoco_hopper", help="(a)'s tasks")
    ap.add_argument("--pomdp_tasks", type=comma_list, default="mujoco_halfcheetah",
                    help="(b)'s tasks (their full-state names; the student plays <task>_pomdp); '' for none")
    ap.add_argument("--arms", type=comma_list, default=",".join(FULL_ARMS + POMDP_ARMS))
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in comma_list(s)], default="0,1,2")
    ap.add_argument("--teacher_frames", type=int, default=600_000)
    ap.add_argument("--teacher_seed", type=int, default=0)
    ap.add_argument("--teacher_dirs", type=task_map, default="", help="TASK=DIR,...: use these teachers, not trained")
    ap.add_argument("--student_frames", type=int, default=200_000, help="(a)'s large students")
    ap.add_argument("--pomdp_frames", type=int, default=200_000, help="(b)'s recurrent students")
    ap.add_argument("--ks_lambda", type=float, default=1.0)
    ap.add_argument("--ks_end_frames", type=int, default=None, help="linear λ reaches 0 here (default: half of "
                                                                    "--student_frames)")
    ap.add_argument("--pomdp_ks_end_frames", type=int, default=None, help="the same for (b) (default: half of "
                                                                          "--pomdp_frames)")
    ap.add_argument("--value_coeff", type=float, default=0.5, help="pomdp_ks_value's --kickstart_value_coeff")
    ap.add_argument("--stats_avg", type=int, default=32, help="episodes in SF's running return (every run)")
    ap.add_argument("--eval_episodes", type=int, default=100, help="the teachers' evaluation")
    ap.add_argument("--train_dir", default=os.path.join(REPO_ROOT, "bench_out", "continuous_kickstart"))
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "benchmarks", "results"))
    ap.add_argument("--records", default=None, help="where each finished run's record is kept (default: "
                                                     "OUT/continuous_kickstart_runs, i.e. "
                                                     "benchmarks/results/continuous_kickstart_runs)")
    ap.add_argument("--analyze_only", action="store_true", help="the report from the runs on disk and the records; "
                                                                "trains nothing")
    ap.add_argument("extra", nargs="*", help="extra flags for every run (after --)")
    return ap


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = build_parser()
    args = ap.parse_args(argv)
    unknown = [a for a in args.arms if a not in FULL_ARMS + POMDP_ARMS]
    if unknown:
        ap.error(f"--arms: unknown {unknown}; known: {', '.join(FULL_ARMS + POMDP_ARMS)}")
    if args.ks_end_frames is None:
        args.ks_end_frames = args.student_frames // 2
    if args.pomdp_ks_end_frames is None:
        args.pomdp_ks_end_frames = args.pomdp_frames // 2
    args.train_dir = os.path.abspath(args.train_dir)
    args.records = os.path.abspath(args.records or os.path.join(args.out, "continuous_kickstart_runs"))
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    os.makedirs(args.train_dir, exist_ok=True)
    failures = {} if args.analyze_only else run_grid(args)
    export_records(args)
    print(write_report(analyze(args, failures), args.out, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
