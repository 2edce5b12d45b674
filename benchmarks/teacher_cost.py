"""Cost of the teachers' forward in the inference worker, next to the student's, on real suite observations.

The inference worker alternates the student's forward and the teachers' (TeacherBank.forward) on each rollout batch,
so the teachers run with caches the student has just evicted: this script reproduces that alternation in one process
and reports CPU time per call (median over rounds, implementations interleaved round-robin) for
- `kernel`: the compiled CPU kernel (sf_kickstart/stack_kernel.py), the default on CPU;
- `torch`: the TorchScript-traced torch implementation (what runs on GPU or without numba), run here on CPU;
for one teacher on every task and for one expert per task (the same set-up as benchmarks/throughput.py).

    python -m benchmarks.teacher_cost --rounds=7 --calls=200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Dict, List

import numpy as np
import torch

from benchmarks.throughput import REPO, make_untrained_teacher


def real_observations(cfg, num_envs: int, steps: int):
    from sample_factory.algo.utils.make_env import make_env_func_non_batched
    from sample_factory.utils.attr_dict import AttrDict

    rng = np.random.default_rng(0)
    samples = []
    for i in range(num_envs):
        env = make_env_func_non_batched(cfg, AttrDict(worker_index=0, vector_index=i, env_id=i))
        obs, _ = env.reset(seed=i)
        for _ in range(steps):
            samples.append({k: np.asarray(v)[None] for k, v in obs[0].items()})
            obs, *_ = env.step([int(rng.integers(env.action_space.n))])
        env.close()
    return samples


def batch(samples, n: int, offset: int) -> Dict[str, torch.Tensor]:
    rows = [samples[(offset + i * 7) % len(samples)] for i in range(n)]
    return {k: torch.from_numpy(np.concatenate([r[k] for r in rows])) for k in rows[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="minigrid_suite")
    ap.add_argument("--student_preset", default="minigrid_large_student.yaml")
    ap.add_argument("--teacher_preset", default="minigrid_small_teacher.yaml")
    ap.add_argument("--batch_sizes", default="9,18,36", help="9: one split of one rollout worker (the usual request)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--train_dir", default=os.path.join(REPO, "bench_out", "teacher_cost"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # as in SF's inference worker

    from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs
    from sample_factory.model.actor_critic import create_actor_critic
    from sample_factory.model.model_utils import get_rnn_size

    from sf_kickstart.suites.registry import prepare_env
    from sf_kickstart.teachers import StackedTeachers, TeacherBank, TeacherSpec
    from sf_kickstart.train import _make_env_info, parse_args

    cfg, _ = parse_args([f"--preset={args.student_preset}", f"--env={args.env}", "--experiment=bench_cost"])
    info = _make_env_info(cfg)
    student = create_actor_critic(cfg, info.obs_space, info.action_space).eval()
    tasks = prepare_env(args.env).task_names(args.env)
    dirs = [
        make_untrained_teacher(os.path.join(args.train_dir, f"teacher{i}"), args.env, args.teacher_preset, [])
        for i in range(len(tasks))
    ]
    setups = {
        "one_teacher": [TeacherSpec(path=dirs[0], tasks=list(tasks))],
        "per_task": [TeacherSpec(path=d, tasks=[t]) for d, t in zip(dirs, tasks)],
    }
    banks = {}
    for setup, specs in setups.items():
        for impl in ("kernel", "torch"):
            bank = TeacherBank(specs, tasks, info.obs_space, info.action_space, "cpu", cpu_kernel=impl == "kernel")
            if impl == "torch":
                assert isinstance(bank.whole, StackedTeachers) and bank.whole.traced is not None
            banks[(setup, impl)] = bank
    samples = real_observations(cfg, num_envs=2 * len(tasks), steps=8)
    num_logits = info.action_space.n

    print(f"env={args.env} student={args.student_preset} teacher={args.teacher_preset} cpus={os.cpu_count()} "
          f"rounds={args.rounds} calls={args.calls}", flush=True)
    print("| batch | student µs/call | setup | kernel µs/call | torch µs/call | kernel / torch | kernel / student |")
    print("|---|---|---|---|---|---|---|")
    for n in [int(b) for b in args.batch_sizes.split(",")]:
        times: Dict[str, List[float]] = {}
        with torch.inference_mode():
            for rnd in range(args.rounds):
                for key, bank in banks.items():
                    obs = batch(samples, n, rnd)
                    h = torch.zeros(n, get_rnn_size(cfg))
                    th = torch.rand(n, bank.rnn_size) * 0.1
                    spent_s = spent_t = 0.0
                    for i in range(args.calls + 10):
                        if i == 10:
                            spent_s = spent_t = 0.0
                        c = time.thread_time()
                        student(prepare_and_normalize_obs(student, dict(obs)), h)
                        c2 = time.thread_time()
                        bank.forward(obs, th, num_logits)
                        spent_t += time.thread_time() - c2
                        spent_s += c2 - c
                    times.setdefault("student", []).append(spent_s / args.calls * 1e6)
                    times.setdefault(f"{key[0]}/{key[1]}", []).append(spent_t / args.calls * 1e6)
        med = {k: statistics.median(v) for k, v in times.items()}
        for setup in setups:
            k, t, s = med[f"{setup}/kernel"], med[f"{setup}/torch"], med["student"]
            print(f"| {n} | {s:.0f} | {setup} | {k:.0f} | {t:.0f} | {k / t:.2f} | {k / s:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
