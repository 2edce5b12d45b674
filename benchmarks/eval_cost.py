"""What periodic evaluation (`--eval_every_frames`, `--eval_episodes`) costs training, measured side by side.

The same training run (the small-teacher preset on minigrid_suite, a fixed frame budget) with and without periodic
evaluation, interleaved over --rounds rounds (this machine is shared and noisy). Per run: the training FPS Sample
Factory reports for its main loop ("Collected ..., FPS"), and the CPU time of every process of the run (the trainer,
its workers, the evaluation processes: `getrusage(RUSAGE_CHILDREN)` around the run) per 1000 frames.

    python -m benchmarks.eval_cost --frames=300000 --eval_every_frames=100000 --eval_episodes=5 --rounds=3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import sys
import time

from sf_kickstart.processes import run_train

SF_FPS = re.compile(r"Collected \{.*\}, FPS: ([\d.]+)")
EVALS = re.compile(r"Periodic evaluation, policy 0 at (\d+) frames")


def one_run(mode: str, opts, train_dir: str) -> dict:
    exp = f"{mode}_{time.time_ns()}"
    args = ["--preset=minigrid_small_teacher.yaml", "--env=minigrid_suite",
            f"--experiment={exp}", f"--train_dir={train_dir}", f"--train_for_env_steps={opts.frames}"]
    if mode == "with_eval":
        args += [f"--eval_every_frames={opts.eval_every_frames}", f"--eval_episodes={opts.eval_episodes}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    r = run_train(args)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = r.stdout + r.stderr
    if r.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    fps = float(SF_FPS.findall(out)[-1])
    shutil.rmtree(os.path.join(train_dir, exp), ignore_errors=True)
    return dict(mode=mode, train_fps=fps, cpu_s=cpu, cpu_s_per_1k_frames=1000 * cpu / opts.frames, wall_s=wall,
                evaluations=len(EVALS.findall(out)))


def summarize(runs: list) -> dict:
    """Medians per mode, and the with/without ratios per round (the two runs of one round ran minutes apart, so a
    round's ratio is the comparison; a ratio of the medians would pair runs of different rounds): their median and
    range."""
    summary = {}
    for mode in ("without_eval", "with_eval"):
        rs = [r for r in runs if r["mode"] == mode]
        summary[mode] = {k: statistics.median(r[k] for r in rs) for k in ("train_fps", "cpu_s_per_1k_frames", "wall_s")}
    by_round = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["mode"]] = r
    for key, name in (("cpu_s_per_1k_frames", "ratio_cpu_per_frame"), ("train_fps", "ratio_train_fps")):
        ratios = [b["with_eval"][key] / b["without_eval"][key] for _, b in sorted(by_round.items())]
        summary[name] = dict(per_round=ratios, median=statistics.median(ratios), min=min(ratios), max=max(ratios))
    return summary


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=300_000)
    p.add_argument("--eval_every_frames", type=int, default=100_000)
    p.add_argument("--eval_episodes", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train_dir", default="bench_out/eval_cost")
    p.add_argument("--out", default="benchmarks/results/eval_cost_cpu.json")
    p.add_argument("--resummarize", action="store_true", help="recompute the summary of the runs already in --out")
    opts = p.parse_args()
    if opts.resummarize:
        with open(opts.out) as f:
            data = json.load(f)
        runs, args = data["runs"], data["args"]
    else:
        runs, args = [], vars(opts)
        for i in range(opts.rounds):
            for mode in (("without_eval", "with_eval") if i % 2 == 0 else ("with_eval", "without_eval")):
                runs.append(dict(one_run(mode, opts, opts.train_dir), round=i))
                print(json.dumps(runs[-1]), flush=True)
    summary = summarize(runs)
    os.makedirs(os.path.dirname(opts.out), exist_ok=True)
    with open(opts.out, "w") as f:
        json.dump(dict(args=args, runs=runs, summary=summary), f, indent=1)
    print(json.dumps(summary, indent=1))
    return 0

if __name__ == "__main__":
    sys.exit(main())
