"""Sample efficiency on a hard suite task: frames for the large student to reach the small teacher's final score,
from scratch vs kickstarted (linear λ), measured in one invocation (seeds interleaved: scratch, kickstarted, ...).

    python -m benchmarks.sample_efficiency --task=DoorKey-8x8 --student_frames=600000 --seeds=1

The teacher is the paper's "earlier agent": the small preset trained on the easier sibling (DoorKey-5x5) and then
on the hard task itself (same observation/action space, so SF resumes it on the new env). Its *final score* is the
mean raw return of its last --stats_avg episodes on the hard task (`suite/<Task>_score` at the end of its training).
A student "reaches" it at the first summary where its own `suite/<Task>_score` (same window) is >= that score.
A run that never reaches it within the budget counts as "> budget": the speedup is then a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Dict, List, Optional

from sf_kickstart.events import scalar_points as scalars
from sf_kickstart.paths import REPO_ROOT
from sf_kickstart.processes import run_train

def frames_to_reach(curve, threshold: float) -> Optional[int]:
    """First step of a [(step, value)] curve whose value is >= threshold (the report's first_reach)."""
    from sf_kickstart.report.analysis import first_reach

    steps, values = zip(*curve) if curve else ((), ())
    found = first_reach(steps, values, threshold)
    return None if found is None else int(found)

def run_train_logged(args_list, log_path) -> None:
    run_train(args_list, log_path=log_path, check=True)

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="DoorKey-8x8")
    ap.add_argument("--easy_task", default="DoorKey-5x5")
    ap.add_argument("--teacher_easy_frames", type=int, default=300_000)
    ap.add_argument("--teacher_frames", type=int, default=600_000, help="frames on the hard task (after the easy one)")
    ap.add_argument("--student_frames", type=int, default=600_000)
    ap.add_argument("--ks_lambda", type=float, default=1.0)
    ap.add_argument("--ks_end_frames", type=int, default=300_000)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--train_dir", default=os.path.join(REPO_ROOT, "bench_out", "sample_efficiency"))
    ap.add_argument("--reuse_teacher", action="store_true")
    ap.add_argument("--analyze_only", action="store_true", help="recompute the tables from existing runs")
    ap.add_argument("--fractions", default="1.0,0.9,0.75", help="also report frames to these fractions of the teacher's final score")
    ap.add_argument("extra", nargs="*", help="extra flags for every run (after --)")
    args = ap.parse_args(argv)
    os.makedirs(args.train_dir, exist_ok=True)
    common = [f"--train_dir={args.train_dir}", "--save_every_sec=60", *args.extra]
    task_score = f"suite/{args.task}_score"

    teacher = "se_teacher"
    teacher_dir = os.path.join(args.train_dir, teacher)
    if not (args.analyze_only or (args.reuse_teacher and os.path.isdir(teacher_dir))):
        shutil.rmtree(teacher_dir, ignore_errors=True)
        print(f"teacher: small preset, {args.teacher_easy_frames} frames on {args.easy_task}", flush=True)
        t_args = ["--preset=minigrid_small_teacher.yaml", f"--experiment={teacher}", "--seed=0", *common]
        run_train_logged(t_args + [f"--env=minigrid_{args.easy_task}", f"--train_for_env_steps={args.teacher_easy_frames}"],
              os.path.join(args.train_dir, "teacher_easy.log"))
        print(f"teacher: + {args.teacher_frames} frames on {args.task}", flush=True)
        run_train_logged(t_args + [f"--env=minigrid_{args.task}", "--restart_behavior=resume",
                        f"--train_for_env_steps={args.teacher_easy_frames + args.teacher_frames}"],
              os.path.join(args.train_dir, "teacher_hard.log"))
    t_curve = scalars(teacher_dir, task_score)
    if not t_curve:
        raise SystemExit(f"teacher has no {task_score} summaries")
    teacher_score = t_curve[-1][1]
    print(f"teacher final score on {args.task}: {teacher_score:.3f}", flush=True)

    results: Dict[str, List[Dict]] = {"scratch": [], "kickstarted": []}
    for seed in range(args.seeds):
        for method in ("scratch", "kickstarted"):
            exp = f"se_{method}_seed{seed}"
            if args.analyze_only:
                curve = scalars(os.path.join(args.train_dir, exp), task_score)
                results[method].append(dict(seed=seed, curve=curve, frames_to_teacher=frames_to_reach(curve, teacher_score),
                                            final=curve[-1][1] if curve else float("nan"), frames=curve[-1][0] if curve else 0))
                continue
            shutil.rmtree(os.path.join(args.train_dir, exp), ignore_errors=True)
            s_args = ["--preset=minigrid_large_student.yaml", f"--env=minigrid_{args.task}", f"--experiment={exp}",
                      f"--seed={seed + 1}", f"--train_for_env_steps={args.student_frames}", *common]
            if method == "kickstarted":
                s_args += [f"--teacher={teacher_dir}", "--kickstart_schedule=linear",
                           f"--kickstart_lambda={args.ks_lambda}", f"--kickstart_end_frames={args.ks_end_frames}"]
            print(f"{exp} ...", flush=True)
            run_train_logged(s_args, os.path.join(args.train_dir, f"{exp}.log"))
            curve = scalars(os.path.join(args.train_dir, exp), task_score)
            reached = frames_to_reach(curve, teacher_score)
            final = curve[-1][1] if curve else float("nan")
            results[method].append(dict(seed=seed, curve=curve, frames_to_teacher=reached, final=final,
                                        frames=curve[-1][0] if curve else 0))
            print(f"  reached teacher score at {reached} frames; final score {final:.3f}", flush=True)

    print()
    print(f"task={args.task} teacher: small preset, {args.teacher_easy_frames} frames {args.easy_task} + "
          f"{args.teacher_frames} frames {args.task}; final score {teacher_score:.3f}")
    print(f"student: large preset, budget {args.student_frames} frames, seeds {args.seeds}; "
          f"kickstarted: linear λ {args.ks_lambda}→0 at {args.ks_end_frames} frames")
    print("| method | seed | frames to teacher's final score | final score |")
    print("|---|---|---|---|")
    for method, runs in results.items():
        for r in runs:
            f = r["frames_to_teacher"]
            print(f"| {method} | {r['seed']} | {f if f is not None else '> ' + str(r['frames'])} | {r['final']:.3f} |")
    ratios = []
    for s, k in zip(results["scratch"], results["kickstarted"]):
        if k["frames_to_teacher"] is not None:
            scratch_f = s["frames_to_teacher"] if s["frames_to_teacher"] is not None else s["frames"]
            bound = "" if s["frames_to_teacher"] is not None else " (lower bound: scratch never reached it)"
            ratios.append(k["frames_to_teacher"] / scratch_f)
            print(f"seed {s['seed']}: kickstarted needs {k['frames_to_teacher'] / scratch_f:.3f} of the scratch frames"
                  f" = {scratch_f / k['frames_to_teacher']:.1f}x fewer{bound}")
    fractions = [float(x) for x in args.fractions.split(",")]
    print()
    print("| method | seed | " + " | ".join(f"frames to {fr:.0%} of teacher ({fr * teacher_score:.3f})" for fr in fractions) + " |")
    print("|---|---|" + "---|" * len(fractions))
    for method, runs in results.items():
        for r in runs:
            cells = []
            for fr in fractions:
                f = frames_to_reach(r["curve"], fr * teacher_score)
                cells.append(str(f) if f is not None else f"> {r['frames']}")
            print(f"| {method} | {r['seed']} | " + " | ".join(cells) + " |")
    for fr in fractions:
        for s_run, k_run in zip(results["scratch"], results["kickstarted"]):
            fs, fk = frames_to_reach(s_run["curve"], fr * teacher_score), frames_to_reach(k_run["curve"], fr * teacher_score)
            if fk is not None:
                base = fs if fs is not None else s_run["frames"]
                print(f"{fr:.0%} of teacher score, seed {s_run['seed']}: kickstarted/scratch frames = {fk / base:.3f}"
                      f"{'' if fs is not None else ' (upper bound: scratch never reached it)'}")
    for runs in results.values():
        for r in runs:
            r.pop("curve", None)
    with open(os.path.join(args.train_dir, "sample_efficiency.json"), "w") as f:
        json.dump(dict(args=vars(args), teacher_score=teacher_score, results=results, ratios=ratios), f, indent=2)
    return 0

if __name__ == "__main__":
    sys.exit(main())
