"""The same small kickstarting PBT population, through Sample Factory's in-process PBT and through Ray Tune
(`python -m sf_kickstart.tune`), on this machine: final scores, and the cost of restarting each member's
`sf_kickstart.train` once per perturbation interval, as a ratio of frames per second and of CPU seconds per frame.

    python -m benchmarks.tune_vs_inprocess --frames=20000 --interval=5000

Both populations: 2 members, the same teacher (the small preset trained --teacher_frames on the task), the same
student flags, the same per-member frame budget and perturbation interval, 2 rollout workers in all (in-process: one
SF run with 2 workers serving both policies; Tune: 2 members at once, 1 worker and 1 CPU each, on a local Ray of 2
CPUs). Frames and CPU seconds: see the notes the script writes under its table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from typing import Dict, List

from sf_kickstart import tags
from sf_kickstart.experiments import latest_checkpoint
from sf_kickstart.paths import REPO_ROOT
from sf_kickstart.processes import run_train


def run(module: str, args: List[str], log_path: str) -> Dict[str, float]:
    """One run (RuntimeError when it fails); its wall and CPU seconds (its process tree, as reaped)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    run_train(args, log_path=log_path, module=module, check=True)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return dict(wall_s=wall, cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def final_frames(exp_dirs: List[str], policies=(0,)) -> int:
    from sf_kickstart.populations.tune.state import checkpoint_state

    return sum(checkpoint_state(latest_checkpoint(d, p))["env_steps"] for d in exp_dirs for p in policies)


def final_scores(exp, metric: str) -> List[float]:
    from sf_kickstart.report import final_score

    return [round(final_score(sc[metric]), 3) for _, sc in sorted(exp.policies.items()) if metric in sc]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="minigrid_DoorKey-5x5")
    ap.add_argument("--teacher_frames", type=int, default=100_000)
    ap.add_argument("--frames", type=int, default=20_000, help="per member")
    ap.add_argument("--interval", type=int, default=5_000, help="PBT perturbation interval (frames)")
    ap.add_argument("--train_dir", default=os.path.join(REPO_ROOT, "bench_out", "tune_vs_inprocess"))
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "benchmarks", "results", "tune_vs_inprocess_cpu.md"))
    a = ap.parse_args(argv)
    os.makedirs(a.train_dir, exist_ok=True)
    common = [f"--env={a.env}", f"--train_dir={a.train_dir}", "--num_envs_per_worker=4", "--batch_size=512",
              "--rollout=32", "--recurrence=32", "--device=cpu", "--decorrelate_experience_max_seconds=0",
              "--experiment_summaries_interval=2", "--seed=1"]
    teacher = os.path.join(a.train_dir, "teacher")
    if latest_checkpoint(teacher) is None:
        run("sf_kickstart.train", [*common, "--preset=minigrid_small_teacher.yaml", "--experiment=teacher",
                                   "--num_workers=2", f"--train_for_env_steps={a.teacher_frames}"],
            os.path.join(a.train_dir, "teacher.log"))
    pbt = [f"--teacher={teacher}", "--kickstart_schedule=constant", "--num_policies=2", f"--train_for_env_steps={a.frames}",
           f"--pbt_period_env_steps={a.interval}", "--pbt_start_mutation=0", "--pbt_replace_fraction=0.5",
           "--pbt_mutation_rate=1.0", "--pbt_replace_reward_gap=0", "--pbt_replace_reward_gap_absolute=0"]
    for name in ("inprocess", "tune"):
        shutil.rmtree(os.path.join(a.train_dir, name), ignore_errors=True)
    rows = {}
    inproc = run("sf_kickstart.train", [*common, *pbt, "--experiment=inprocess", "--with_pbt=True", "--num_workers=2"],
                 os.path.join(a.train_dir, "inprocess.log"))
    inproc["frames"] = final_frames([os.path.join(a.train_dir, "inprocess")], policies=range(2))
    rows["SF in-process PBT"] = inproc
    tune = run("sf_kickstart.tune", [*common, *pbt, "--experiment=tune", "--num_workers=1", "--num_cpus=2",
                                     "--tune_cpus_per_trial=1"], os.path.join(a.train_dir, "tune.log"))
    import csv

    runs = []
    for i in range(2):
        with open(os.path.join(a.train_dir, "tune", f"trial_{i:02d}", "progress.csv"), newline="") as f:
            runs += list(csv.DictReader(f))
    # frames collected: every run's frames (an exploit can send a member back to its source's fewer frames)
    tune["frames"] = sum(int(r["interval_frames"]) for r in runs)
    tune["final_frames"] = final_frames([os.path.join(a.train_dir, "tune", f"member_{i:02d}") for i in range(2)])
    tune["driver_cpu_s"] = tune["cpu_s"]  # the driver and what it reaped; Ray's workers and their runs are not
    tune["cpu_s"] = sum(float(r["interval_cpu_s"]) for r in runs)  # the sf_kickstart.train runs' process trees
    tune["runs"] = len(runs)
    rows["Ray Tune PBT"] = tune

    from sf_kickstart.report import load_experiment
    from sf_kickstart.report.population import load_population

    rows["SF in-process PBT"]["scores"] = final_scores(load_experiment(os.path.join(a.train_dir, "inprocess")), tags.SUITE_SCORE)
    rows["Ray Tune PBT"]["scores"] = final_scores(load_population(os.path.join(a.train_dir, "tune")), tags.SUITE_SCORE)
    write(a, rows)
    return 0


def write(a, rows: Dict[str, Dict]) -> None:
    base = rows["SF in-process PBT"]
    lines = [
        f"# Kickstarting PBT: Sample Factory in-process vs Ray Tune ({a.env}, 2 members)",
        "",
        f"Command: `python -m benchmarks.tune_vs_inprocess --env={a.env} --teacher_frames={a.teacher_frames} "
        f"--frames={a.frames} --interval={a.interval}`",
        f"Per member: {a.frames} frames, perturbation interval {a.interval} frames. Machine: {os.cpu_count()} CPU "
        f"cores, shared with other jobs (wall-clock numbers are noisy; CPU seconds per frame are steadier).",
        "",
        "| population | frames | wall s | FPS | FPS vs in-process | CPU s | CPU ms/frame | vs in-process | "
        "final suite score per member |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        fps, cpf = r["frames"] / r["wall_s"], 1000 * r["cpu_s"] / r["frames"]
        base_fps, base_cpf = base["frames"] / base["wall_s"], 1000 * base["cpu_s"] / base["frames"]
        lines.append(f"| {name} | {r['frames']} | {r['wall_s']:.0f} | {fps:.0f} | {fps / base_fps:.3f} | "
                     f"{r['cpu_s']:.0f} | {cpf:.2f} | {cpf / base_cpf:.3f} | {', '.join(map(str, r['scores']))} |")
    t = rows["Ray Tune PBT"]
    lines += ["", f"Frames: collected by all runs (in-process: the policies' final env_steps; Tune: every "
              f"`sf_kickstart.train` run's frames; its members ended at {t['final_frames']} frames in all, an exploit "
              f"can send a member back to its source's frames). CPU: in-process, the SF run's process tree; Tune, its "
              f"{t['runs']} `sf_kickstart.train` runs (one per member and interval, plus re-runs after exploits); the "
              f"CPU of Ray's own processes is not in it (the driver and what it reaped used {t['driver_cpu_s']:.0f} s).",
              "", "```json", json.dumps(rows, indent=1), "```", ""]
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
