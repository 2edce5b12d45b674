"""Sample efficiency on minigrid_suite: the large student kickstarted by per-task experts vs from scratch vs
kickstarted by one small multi-task teacher (the paper's Table 1/3 shape), in one invocation.

    python -m benchmarks.multiteacher_efficiency --expert_frames=250000 --teacher_frames=1000000 --student_frames=1000000

1. experts: the small preset trained on each *easy* task alone (`cfg/teachers/minigrid_experts.yaml` maps each hard
   task to its easier sibling's expert, the paper's laser-tag transfer);
2. one small multi-task teacher trained on the whole suite for --teacher_frames;
3. the large student on the suite, same seed and budget: `scratch_seed<N>`, `ks_experts_seed<N>` (--teachers=map),
   `ks_single_seed<N>` (--teacher=multi-task teacher); kickstarted runs use linear λ from --ks_lambda to 0 at
   --ks_end_frames. With several horizons (`--ks_end_frames=50000,100000`) each gets its own method,
   `ks_experts_to50k`, `ks_single_to50k`, ... `ks_experts_adaptive` / `ks_single_adaptive`: adaptive λ (no tuning),
   G_T of each teacher from its evaluation cache (`python -m sf_kickstart.evaluate <teacher> --no_teachers`, run here
   first when the cache is missing, --eval_episodes per task).
Then sf_kickstart.report writes the tables (suite score at frame budgets, frames to reach scores, speedup, final
improvement) and plots into <train_dir>/report.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

import yaml

from sf_kickstart.evaluation_cache import read_scores
from sf_kickstart.experiments import latest_checkpoint
from sf_kickstart.paths import CFG_DIR, REPO_ROOT
from sf_kickstart.processes import run_train

def run_train_logged(args_list, log_path) -> None:
    run_train(args_list, log_path=log_path, check=True)

def student_methods(teacher_flags, ks_lambda: float, horizons) -> dict:
    """Method name -> train flags: scratch; per teacher kind a linear schedule per horizon and adaptive λ."""
    from launchers.common import frames_label

    out = {"scratch": []}
    for kind, flag in teacher_flags.items():
        for h in horizons:
            name = kind if len(horizons) == 1 else f"{kind}_to{frames_label(h)}"
            out[name] = [flag, "--kickstart_schedule=linear", f"--kickstart_lambda={ks_lambda}", f"--kickstart_end_frames={h}"]
        out[f"{kind}_adaptive"] = [flag, "--kickstart_schedule=adaptive", f"--kickstart_lambda={ks_lambda}"]
    return out


def evaluate_teachers(exp_dirs, episodes: int, policy: str = "greedy", train_dir=None) -> None:
    """Cache each teacher's evaluated scores (greedy: what adaptive λ reads as G_T) unless it has them already, of its
    latest checkpoint (train_dir: where a shipped teacher's cache is written and read)."""
    for exp_dir in exp_dirs:
        cached = read_scores(exp_dir, policy, train_dir=train_dir)
        if cached and cached.get("checkpoint") == os.path.basename(latest_checkpoint(exp_dir) or ""):
            continue
        print(f"evaluating teacher {exp_dir} ({episodes} {policy} episodes per task)", flush=True)
        cmd = [sys.executable, "-m", "sf_kickstart.evaluate", exp_dir, "--no_teachers", "--no_progress",
               f"--episodes={episodes}", f"--policy={policy}", "--device=cpu"]
        subprocess.run(cmd + ([f"--train_dir={train_dir}"] if train_dir else []), check=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--expert_frames", type=int, default=250_000)
    ap.add_argument("--teacher_frames", type=int, default=1_000_000)
    ap.add_argument("--student_frames", type=int, default=1_000_000)
    ap.add_argument("--ks_lambda", type=float, default=1.0)
    ap.add_argument("--ks_end_frames", default="500000", help="linear λ horizon(s), comma-separated")
    ap.add_argument("--eval_episodes", type=int, default=50, help="episodes per task of the teachers' evaluation")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--map", default=os.path.join(CFG_DIR, "teachers", "minigrid_experts.yaml"))
    ap.add_argument("--train_dir", default=os.path.join(REPO_ROOT, "bench_out", "multiteacher"))
    ap.add_argument("--reuse_teachers", action="store_true")
    ap.add_argument("--methods", default="scratch,ks_experts,ks_single")
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args(argv)
    horizons = [int(h) for h in args.ks_end_frames.split(",")]
    methods = args.methods.split(",")
    known = list(student_methods({"ks_experts": "", "ks_single": ""}, args.ks_lambda, horizons))
    unknown = [m for m in methods if m not in known]
    if unknown:
        ap.error(f"--methods: unknown {unknown}; known: {', '.join(known)}")
    teachers_dir = os.path.join(args.train_dir, "teachers")
    students_dir = os.path.join(args.train_dir, "students")
    os.makedirs(teachers_dir, exist_ok=True)
    os.makedirs(students_dir, exist_ok=True)

    with open(args.map) as f:
        mapping = yaml.safe_load(f)
    mapping = mapping.get("teachers", mapping)
    experts = {}
    for task, entry in mapping.items():
        name = os.path.basename(os.path.normpath(entry if isinstance(entry, str) else entry["path"]))
        experts.setdefault(name, []).append(task)

    # 1. experts, each on the first (easy) task it serves
    for name, tasks in experts.items():
        exp_dir = os.path.join(teachers_dir, name)
        if args.reuse_teachers and os.path.isdir(os.path.join(exp_dir, "checkpoint_p0")):
            continue
        shutil.rmtree(exp_dir, ignore_errors=True)
        print(f"expert {name}: {args.expert_frames} frames on {tasks[0]} (serves {tasks})", flush=True)
        run_train_logged(["--preset=minigrid_small_teacher.yaml", f"--env=minigrid_{tasks[0]}", f"--experiment={name}",
               f"--train_dir={teachers_dir}", f"--train_for_env_steps={args.expert_frames}", "--seed=0", *args.extra],
              os.path.join(teachers_dir, f"{name}.log"))
    # 2. one small multi-task teacher (when a ks_single* method uses it)
    single = os.path.join(teachers_dir, "multitask_teacher")
    need_single = any(m.startswith("ks_single") for m in methods)
    if need_single and not (args.reuse_teachers and os.path.isdir(os.path.join(single, "checkpoint_p0"))):
        shutil.rmtree(single, ignore_errors=True)
        print(f"multi-task teacher: {args.teacher_frames} frames on minigrid_suite", flush=True)
        run_train_logged(["--preset=minigrid_small_teacher.yaml", "--env=minigrid_suite", "--experiment=multitask_teacher",
               f"--train_dir={teachers_dir}", f"--train_for_env_steps={args.teacher_frames}", "--seed=0", *args.extra],
              os.path.join(teachers_dir, "multitask_teacher.log"))

    # 3. students
    map_path = os.path.join(args.train_dir, "experts_map.yaml")
    with open(map_path, "w") as f:
        yaml.safe_dump({task: os.path.join(teachers_dir, os.path.basename(os.path.normpath(
            e if isinstance(e, str) else e["path"]))) for task, e in mapping.items()}, f)
    teacher_flags = {"ks_experts": f"--teachers={map_path}", "ks_single": f"--teacher={single}"}
    method_flags = student_methods(teacher_flags, args.ks_lambda, horizons)
    adaptive_kinds = {m.rsplit("_adaptive", 1)[0] for m in methods if m.endswith("_adaptive")}
    to_evaluate = [os.path.join(teachers_dir, n) for n in experts] if "ks_experts" in adaptive_kinds else []
    evaluate_teachers(to_evaluate + ([single] if "ks_single" in adaptive_kinds else []), args.eval_episodes)
    for seed in range(args.seeds):
        for method in methods:
            exp = f"{method}_seed{seed}"
            shutil.rmtree(os.path.join(students_dir, exp), ignore_errors=True)
            print(f"student {exp} ...", flush=True)
            run_train_logged(["--preset=minigrid_large_student.yaml", "--env=minigrid_suite", f"--experiment={exp}",
                   f"--train_dir={students_dir}", f"--train_for_env_steps={args.student_frames}", f"--seed={seed + 1}",
                   *method_flags[method], *args.extra],
                  os.path.join(students_dir, f"{exp}.log"))

    from sf_kickstart.report import cli

    return cli.main([students_dir, "--baseline=scratch", f"--out={os.path.join(args.train_dir, 'report')}",
                     "--budgets=0.1,0.25,0.5,1.0"])

if __name__ == "__main__":
    sys.exit(main())
