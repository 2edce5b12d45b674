"""Throughput: plain APPO vs kickstarted APPO (one teacher, per-task teachers), plus the env-only ceiling.

Same student (cfg/minigrid_large_student.yaml or --student_preset), same workers, measured side by side in one
invocation, modes interleaved round-robin over --repeats rounds (machines are noisy), steady-state FPS after a
warm-up. Teachers are untrained copies of the small-teacher preset (weights do not change the cost of a forward pass).

    python -m benchmarks.throughput --seconds=60 --repeats=3
    python -m benchmarks.throughput --modes=env_only,plain,one_teacher,per_task --device=gpu --num_workers=14 ...

env_only: the same number of worker processes, each stepping the same number of envs with random actions (no
inference, no learning): the ceiling the sampler could reach.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FPS_LINE = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\]\[\d+\] Fps is .*Total num frames: (\d+)")


def make_untrained_teacher(path: str, env: str, preset: str, extra: List[str]) -> str:
    import json as _json

    import torch
    from sample_factory.model.actor_critic import create_actor_critic

    from sf_kickstart.train import _make_env_info, parse_args

    cfg, _ = parse_args([f"--preset={preset}", f"--env={env}", "--experiment=bench_teacher", *extra])
    info = _make_env_info(cfg)
    model = create_actor_critic(cfg, info.obs_space, info.action_space)
    os.makedirs(os.path.join(path, "checkpoint_p0"), exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        _json.dump(vars(cfg), f)
    torch.save(
        dict(train_step=0, env_steps=0, best_performance=-1e9, model=model.state_dict(), optimizer={}, curr_lr=0.0),
        os.path.join(path, "checkpoint_p0", "checkpoint_000000000_0.pth"),
    )
    return path


def steady_fps(log_text: str, warmup_s: float) -> float:
    points = []
    for ts, frames in FPS_LINE.findall(log_text):
        t = datetime.strptime(ts, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        points.append((t, int(frames)))
    started = [p for p in points if p[1] > 0]
    if len(started) < 2:
        return float("nan")
    t0 = started[0][0] + warmup_s
    window = [p for p in started if p[0] >= t0]
    if len(window) < 2:
        window = started[-2:]
    (ta, fa), (tb, fb) = window[0], window[-1]
    return (fb - fa) / (tb - ta) if tb > ta else float("nan")


def run_training(args, mode: str, rnd: int, teacher_args: List[str]) -> float:
    exp = f"bench_{mode}_r{rnd}"
    shutil.rmtree(os.path.join(args.train_dir, exp), ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "sf_kickstart.train",
        f"--preset={args.student_preset}",
        f"--env={args.env}",
        f"--experiment={exp}",
        f"--train_dir={args.train_dir}",
        f"--train_for_seconds={int(args.seconds)}",
        "--train_for_env_steps=10000000000",
        f"--num_workers={args.num_workers}",
        f"--num_envs_per_worker={args.num_envs_per_worker}",
        f"--device={args.device}",
        "--save_every_sec=100000",
        "--experiment_summaries_interval=5",
        "--decorrelate_experience_max_seconds=0",
        *teacher_args,
        *args.extra,
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=args.seconds + 240)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise RuntimeError(f"{mode} run failed with rc={proc.returncode}")
    return steady_fps(proc.stdout + proc.stderr, args.warmup)


def _env_worker(env_name: str, preset: str, num_envs: int, worker_idx: int, seconds: float, out) -> None:
    import numpy as np
    from sample_factory.algo.utils.make_env import make_env_func_non_batched
    from sample_factory.utils.attr_dict import AttrDict

    from sf_kickstart.train import parse_args

    cfg, _ = parse_args([f"--preset={preset}", f"--env={env_name}", "--experiment=bench_env"])
    envs = []
    for i in range(num_envs):
        env_id = worker_idx * num_envs + i
        envs.append(make_env_func_non_batched(cfg, AttrDict(worker_index=worker_idx, vector_index=i, env_id=env_id)))
    for e in envs:
        e.reset(seed=worker_idx)
    rng = np.random.default_rng(worker_idx)
    steps = 0
    start = time.time()
    n_actions = envs[0].action_space.n
    while time.time() - start < seconds:
        for e in envs:
            e.step([int(rng.integers(n_actions))])  # SF's non-batched wrapper: list of one action, auto-reset
            steps += 1
    out.put(steps / (time.time() - start))


def run_env_only(args) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(target=_env_worker, args=(args.env, args.student_preset, args.num_envs_per_worker, w, args.seconds / 2, q), daemon=True)
        for w in range(args.num_workers)
    ]
    for p in procs:
        p.start()
    rates = [q.get(timeout=args.seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="minigrid_suite")
    ap.add_argument("--student_preset", default="minigrid_large_student.yaml")
    ap.add_argument("--teacher_preset", default="minigrid_small_teacher.yaml")
    ap.add_argument("--modes", default="env_only,plain,one_teacher,per_task")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--num_workers", type=int, default=2)
    ap.add_argument("--num_envs_per_worker", type=int, default=18)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--train_dir", default=os.path.join(REPO, "bench_out", "throughput"))
    ap.add_argument("--out", default=os.path.join(REPO, "bench_out", "throughput.json"))
    ap.add_argument("extra", nargs="*", help="extra flags passed to every training run (after --)")
    args = ap.parse_args(argv)
    os.makedirs(args.train_dir, exist_ok=True)
    modes = args.modes.split(",")

    from sf_kickstart.suites.registry import prepare_env

    suite = prepare_env(args.env)
    tasks = suite.task_names(args.env)
    teacher_args: Dict[str, List[str]] = {"plain": []}
    if "one_teacher" in modes:
        t = make_untrained_teacher(os.path.join(args.train_dir, "teacher_one"), args.env, args.teacher_preset, [])
        teacher_args["one_teacher"] = [f"--teacher={t}", "--kickstart_schedule=constant"]
    if "per_task" in modes:
        lines = []
        for i, task in enumerate(tasks):
            # one expert per task from the small-teacher preset (experts of one architecture run as one stacked
            # computation; mixed architectures are supported and tested, each group then runs on its own)
            t = make_untrained_teacher(os.path.join(args.train_dir, f"teacher_task{i}"), args.env, args.teacher_preset, [])
            lines.append(f"{task}: {t}")
        map_path = os.path.join(args.train_dir, "per_task_teachers.yaml")
        with open(map_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        teacher_args["per_task"] = [f"--teachers={map_path}", "--kickstart_schedule=constant"]

    results: Dict[str, List[float]] = {m: [] for m in modes}
    for rnd in range(args.repeats):
        for mode in modes:
            fps = run_env_only(args) if mode == "env_only" else run_training(args, mode, rnd, teacher_args[mode])
            results[mode].append(fps)
            print(f"round {rnd} {mode:12s} {fps:9.1f} FPS", flush=True)

    mean = {m: statistics.mean(v) for m, v in results.items()}
    print()
    print(f"env={args.env} student={args.student_preset} workers={args.num_workers}x{args.num_envs_per_worker} "
          f"device={args.device} seconds={args.seconds} repeats={args.repeats} cpus={os.cpu_count()}")
    print("| mode | FPS (mean of rounds) | rounds | vs plain | vs env-only |")
    print("|---|---|---|---|---|")
    for m in modes:
        vs_plain = mean[m] / mean["plain"] if "plain" in mean else float("nan")
        vs_env = mean[m] / mean["env_only"] if "env_only" in mean else float("nan")
        rounds = ", ".join(f"{x:.0f}" for x in results[m])
        print(f"| {m} | {mean[m]:.0f} | {rounds} | {vs_plain:.3f} | {vs_env:.3f} |")
    with open(args.out, "w") as f:
        json.dump(dict(args=vars(args), results=results, mean=mean), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
