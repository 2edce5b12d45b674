"""The teachers' share of the per-frame compute, measured in isolation (one process, one thread, CPU time).

Every env frame costs, in a kickstarted run: one env step (rollout worker), one row of the student's forward and one
row of the teachers' forward (inference worker), and one row of the learner's train step, whose loss has the
kickstart term added. This script measures each part on real suite observations, with CPU time (time.thread_time)
and one torch thread as in Sample Factory's workers, parts interleaved round-robin over --rounds, medians reported:

- inference side: CPU time per inference call of the student's forward and of the teachers' forward
  (TeacherBank.forward), alternating as in the inference worker (the student's forward evicts the teachers' weights
  from the caches between calls), for the compiled CPU kernel (`kernel`, the CPU default) and the traced torch
  implementation (`torch`, the GPU / no-numba path) and for one teacher on every task and for one expert per task;
- learner side: CPU time of Sample Factory's whole train step (sf_kickstart's learner: batch preparation, V-trace,
  forward, losses, backward, optimizer step) on one training batch of real trajectories (--batch_size frames: rollout x
  trajectories), without a teacher and with the kickstart term (teacher logits and teacher index as the inference
  worker stores them); the difference is the learner's extra work with teachers; the kickstart term alone (the per-sample
  λ weights, sf_kickstart.loss.kickstart_loss and its backward into the student's logits) is timed too;
- env side: CPU time of one env step through Sample Factory's env wrapper, random actions.

Headline: teacher share of per-frame compute = (teachers' forward + learner's extra) / (env step + student's forward
+ student's train step + teachers' forward + learner's extra), all per frame, where the learner's extra is the median
per-round difference of the train steps with and without teachers (not less than the term measured alone; the share
with the term alone is printed too), inference at --headline_batch envs per
call (9: one split of one rollout worker, ~85 % of inference calls in benchmarks/throughput.py's runs). Not included:
Sample Factory's own overhead (messaging, buffers, batching, the main process), assumed the same with and without
teachers; `benchmarks/throughput.py` measures the whole process tree end to end (--throughput_json=ITS_OUT prints the
end-to-end CPU ratio these isolated costs predict next to the one it measured).

    python -m benchmarks.teacher_cost --rounds=7 --calls=200 --throughput_json=bench_out/throughput.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
import warnings
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


# ------------------------------------------------------------------------------------------------ env side
def env_step_cost(cfg, num_envs: int, steps: int) -> float:
    """CPU seconds per env step (SF's non-batched wrapper, random actions, auto-reset)."""
    from sample_factory.algo.utils.make_env import make_env_func_non_batched
    from sample_factory.utils.attr_dict import AttrDict

    rng = np.random.default_rng(1)
    envs = [make_env_func_non_batched(cfg, AttrDict(worker_index=0, vector_index=i, env_id=i)) for i in range(num_envs)]
    for i, e in enumerate(envs):
        e.reset(seed=100 + i)
    n = envs[0].action_space.n
    start = time.thread_time()
    for _ in range(steps):
        for e in envs:
            e.step([int(rng.integers(n))])
    spent = time.thread_time() - start
    for e in envs:
        e.close()
    return spent / (steps * num_envs)


# ------------------------------------------------------------------------------------------------ learner side
def trajectory_batch(cfg, env_info, layout, bank) -> Dict:
    """One training batch (cfg.batch_size frames) of real trajectories in Sample Factory's buffer layout; with a
    layout, the teacher logits and teacher index come from the bank's forward on the same observations."""
    from sample_factory.algo.utils.make_env import make_env_func_non_batched
    from sample_factory.algo.utils.shared_buffers import alloc_trajectory_tensors
    from sample_factory.model.model_utils import get_rnn_size
    from sample_factory.utils.attr_dict import AttrDict

    from sf_kickstart.sf.storage import alloc_kickstart_trajectory_tensors

    rollout, num_traj = cfg.rollout, cfg.batch_size // cfg.rollout
    if layout is None:
        t = alloc_trajectory_tensors(env_info, num_traj, rollout, get_rnn_size(cfg), "cpu", False)
    else:
        t = alloc_kickstart_trajectory_tensors(env_info, num_traj, rollout, layout, "cpu", False)
    rng = np.random.default_rng(2)
    n_act = env_info.action_space.n
    for i in range(num_traj):
        env = make_env_func_non_batched(cfg, AttrDict(worker_index=0, vector_index=i, env_id=i))
        obs, _ = env.reset(seed=i)
        for s in range(rollout + 1):
            for k, v in obs[0].items():
                t["obs"][k][i, s] = torch.as_tensor(np.asarray(v))
            if s == rollout:
                break
            a = int(rng.integers(n_act))
            obs, rew, term, trunc, _ = env.step([a])
            t["actions"][i, s] = a
            t["rewards"][i, s] = float(rew[0])
            t["dones"][i, s] = bool(term[0] or trunc[0])
        env.close()
    t["time_outs"].fill_(False)
    t["policy_id"].fill_(0)
    t["policy_version"].fill_(0)
    t["rnn_states"].normal_(0, 0.1)
    t["values"].normal_(0, 0.1)
    t["action_logits"].normal_(0, 0.1)
    t["log_prob_actions"].fill_(-float(np.log(n_act)))
    if layout is not None:
        with torch.inference_mode():
            flat_obs = {k: v[:, :rollout].reshape((-1,) + tuple(v.shape[2:])) for k, v in t["obs"].items()}
            rnn = torch.zeros(num_traj * rollout, bank.rnn_size)
            logits, tidx, _ = bank.forward(flat_obs, rnn, layout.num_logits)
        t["teacher_logits"][:] = logits.reshape(num_traj, rollout, -1)
        t["teacher_idx"][:] = tidx.reshape(num_traj, rollout).float()
    return t


def make_learner(cfg, env_info, layout, train_dir: str, name: str):
    from sample_factory.algo.utils.model_sharing import ParameterServer
    from sample_factory.utils.attr_dict import AttrDict

    from sf_kickstart.sf.learner import KickstartLearner

    cfg = AttrDict({**vars(cfg), "train_dir": train_dir, "experiment": f"learner_{name}"})
    shutil.rmtree(os.path.join(train_dir, cfg.experiment), ignore_errors=True)
    versions = torch.zeros([1], dtype=torch.int32)
    learner = KickstartLearner(cfg, env_info, versions, 0, ParameterServer(0, versions, False), layout=layout)
    learner.init()
    learner._should_save_summaries = lambda: False  # summaries are written every few seconds; not per-frame work
    return learner


def clone_tensors(d):
    return type(d)({k: clone_tensors(v) if isinstance(v, dict) else v.clone() for k, v in d.items()})


def timed_train_step(learner, template: Dict) -> float:
    """CPU seconds of one learner.train() on a fresh copy of the batch (train() modifies its batch in place)."""
    batch = clone_tensors(template)
    batch["policy_version"].fill_(learner.train_step)
    start = time.thread_time()
    stats = learner.train(batch)
    spent = time.thread_time() - start
    assert stats is not None, "the learner skipped the batch"
    return spent


# ------------------------------------------------------------------------------------------------ inference side
def make_banks(setups, tasks, info) -> Dict:
    from sf_kickstart.teachers import StackedTeachers, TeacherBank

    banks = {}
    for setup, specs in setups.items():
        for impl in ("kernel", "torch"):
            bank = TeacherBank(specs, tasks, info.obs_space, info.action_space, "cpu", cpu_kernel=impl == "kernel")
            if impl == "torch":
                assert isinstance(bank.whole, StackedTeachers) and bank.whole.traced is not None
            banks[(setup, impl)] = bank
    return banks


def inference_costs(args, cfg, student, banks, samples, num_logits: int) -> Dict[int, Dict[str, float]]:
    """batch size -> {'student' | 'setup/impl': median CPU µs per call}."""
    from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs
    from sample_factory.model.model_utils import get_rnn_size

    out = {}
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
        out[n] = {k: statistics.median(v) for k, v in times.items()}
    return out


def kickstart_term_cost(batch_size: int, splits, num_teachers: int, calls: int) -> float:
    """CPU seconds of the learner's kickstart term on one training batch, by itself: the per-sample λ weights as
    KickstartLearner computes them, the project's loss (sf_kickstart.loss.kickstart_loss) and its backward into the
    student's logits (from there the gradient joins the RL loss's, through the same network)."""
    from sf_kickstart.kickstart.loss import kickstart_loss

    gen = torch.Generator().manual_seed(3)
    num_logits = sum(splits)
    teacher_logits = torch.randn(batch_size, num_logits, generator=gen)
    teacher_idx = torch.randint(0, num_teachers, (batch_size,), generator=gen).float()
    valids = torch.ones(batch_size, dtype=torch.bool)
    lambdas_np = np.full(num_teachers, 0.5)
    spent = 0.0
    for i in range(calls + 3):
        student_logits = torch.randn(batch_size, num_logits, generator=gen, requires_grad=True)
        start = time.thread_time()
        with torch.no_grad():
            lambdas = torch.as_tensor(lambdas_np, dtype=torch.float32)
            tidx = teacher_idx.long()
            has_teacher = tidx >= 0
            weights = torch.where(has_teacher, lambdas[tidx.clamp_min(0)], torch.zeros_like(teacher_idx))
        term = kickstart_loss(student_logits, teacher_logits, weights, valids, splits, has_teacher)
        term.loss.backward()
        if i >= 3:
            spent += time.thread_time() - start
    return spent / calls


def learner_costs(args, cfg, info, layouts, banks) -> Dict[str, float]:
    """'plain' | setup -> median CPU µs per train step (one batch); 'term/setup': the kickstart term alone per batch;
    'env_step': one env step. All interleaved round-robin."""
    from sf_kickstart.kickstart.loss import head_sizes
    from sf_kickstart.sf.distillation import action_heads

    splits = head_sizes(action_heads(info.action_space))
    learners, batches = {}, {}
    for name, layout in layouts.items():
        bank = banks[(name, "kernel")] if layout is not None else None
        learners[name] = make_learner(cfg, info, layout, os.path.join(args.train_dir, "learners"), name)
        batches[name] = trajectory_batch(cfg, info, layout, bank)
    times: Dict[str, List[float]] = {}
    for rnd in range(args.rounds):
        for name in layouts:
            learner = learners[name]
            timed_train_step(learner, batches[name])  # warm
            spent = [timed_train_step(learner, batches[name]) for _ in range(args.train_steps)]
            times.setdefault(name, []).append(statistics.mean(spent) * 1e6)
            if layouts[name] is not None:
                term = kickstart_term_cost(cfg.batch_size, splits, len(layouts[name].specs), calls=20)
                times.setdefault(f"term/{name}", []).append(term * 1e6)
        times.setdefault("env_step", []).append(env_step_cost(cfg, num_envs=9, steps=50) * 1e6)
    return times


# ------------------------------------------------------------------------------------------------ report
def print_inference(inf, setups) -> None:
    print("Inference side: CPU µs per call (median of rounds)")
    print()
    print("| batch | student µs/call | setup | kernel µs/call | torch µs/call | kernel / torch | kernel / student |")
    print("|---|---|---|---|---|---|---|")
    for n, med in inf.items():
        for setup in setups:
            k, t, s = med[f"{setup}/kernel"], med[f"{setup}/torch"], med["student"]
            print(f"| {n} | {s:.0f} | {setup} | {k:.0f} | {t:.0f} | {k / t:.2f} | {k / s:.2f} |")


def print_learner(times, setups, batch_size: int) -> Dict[str, float]:
    """Prints the learner table; returns the medians (µs per batch)."""
    med = {k: statistics.median(v) for k, v in times.items()}
    plain = med["plain"]
    print()
    print(f"Learner side: CPU per train step on one batch of {batch_size} frames (median of rounds; the step "
          f"difference per round is the with-teacher step minus the plain step of the same round)")
    print()
    print("| learner | ms / train step | step difference vs plain, ms: median (range) | kickstart term alone, ms | "
          "term / plain step |")
    print("|---|---|---|---|---|")
    print(f"| plain | {plain / 1e3:.1f} | – | – | – |")
    for setup in setups:
        diffs = [(a - b) / 1e3 for a, b in zip(times[setup], times["plain"])]
        term = med[f"term/{setup}"]
        # the learner's extra work with teachers: the step difference (all of it: the term, the wider rnn_states
        # slot sliced off, the teacher keys in every minibatch), but never less than the term measured alone
        med[f"extra/{setup}"] = max(statistics.median(diffs) * 1e3, term)
        print(f"| {setup} | {med[setup] / 1e3:.1f} | {statistics.median(diffs):+.2f} ({min(diffs):+.2f} to "
              f"{max(diffs):+.2f}) | {term / 1e3:.2f} | {term / plain:.3f} |")
    return med


def print_headline(inf, lrn, setups, n: int, batch_size: int) -> Dict[str, float]:
    print()
    print(f"Per frame (µs of CPU; inference at {n} envs per call with the CPU kernel; learner: the median step "
          f"difference, or the kickstart term alone if larger)")
    print()
    print("| setup | env step | student forward | student train step | teachers' forward | learner's extra | "
          "total | **teacher share** | teacher share of the models' compute (no env) | share with the term alone |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    env, s_inf, s_learn = lrn["env_step"], inf[n]["student"] / n, lrn["plain"] / batch_size
    shares = {}
    for setup in setups:
        t_inf, ks = inf[n][f"{setup}/kernel"] / n, lrn[f"extra/{setup}"] / batch_size
        total = env + s_inf + s_learn + t_inf + ks
        shares[setup] = (t_inf + ks) / total
        model_share = (t_inf + ks) / (s_inf + s_learn + t_inf + ks)
        term = lrn[f"term/{setup}"] / batch_size
        floor = (t_inf + term) / (env + s_inf + s_learn + t_inf + term)
        print(f"| {setup} | {env:.1f} | {s_inf:.1f} | {s_learn:.1f} | {t_inf:.1f} | {ks:.2f} | {total:.1f} | "
              f"**{shares[setup]:.1%}** | {model_share:.1%} | {floor:.1%} |")
    return shares


def print_expected_ratios(path: str, inf, lrn, setups, n: int, batch_size: int) -> None:
    """Against a benchmarks/throughput.py result: the end-to-end CPU ratio these isolated costs predict."""
    import json

    with open(path) as f:
        runs = json.load(f)["results"]
    if "plain" not in runs:
        return
    plain = statistics.median(r["cpu_per_1k"] for r in runs["plain"]) * 1e3  # µs per frame
    print()
    print(f"Against {path}: plain APPO end to end {plain:.0f} µs CPU per frame (median), of which the parts above "
          f"(env, student forward, train step) are {lrn['env_step'] + inf[n]['student'] / n + lrn['plain'] / batch_size:.0f}")
    print()
    print("| setup | teachers' extra µs / frame | expected CPU ratio vs plain | measured median (range) |")
    print("|---|---|---|---|")
    for setup in setups:
        extra = inf[n][f"{setup}/kernel"] / n + lrn[f"extra/{setup}"] / batch_size
        measured = ""
        if setup in runs:
            ratios = [a["cpu_per_1k"] / b["cpu_per_1k"] for a, b in zip(runs[setup], runs["plain"])]
            measured = f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f})"
        print(f"| {setup} | {extra:.1f} | {(plain + extra) / plain:.3f} | {measured} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="minigrid_suite")
    ap.add_argument("--student_preset", default="minigrid_large_student.yaml")
    ap.add_argument("--teacher_preset", default="minigrid_small_teacher.yaml")
    ap.add_argument("--batch_sizes", default="9,18,36", help="9: one split of one rollout worker (the usual request)")
    ap.add_argument("--headline_batch", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=200, help="inference calls per round and implementation")
    ap.add_argument("--train_steps", type=int, default=8, help="learner train steps per round and setup")
    ap.add_argument("--train_dir", default=os.path.join(REPO, "bench_out", "teacher_cost"))
    ap.add_argument("--throughput_json", default=None, help="a benchmarks/throughput.py --out file: expected vs "
                    "measured end-to-end CPU ratios")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # as in SF's inference and learner workers
    import logging

    from sample_factory.utils.utils import log

    log.setLevel(logging.WARNING)  # the learners' set-up logs (model printout, "no checkpoint") are not results
    warnings.filterwarnings("ignore", category=UserWarning, module="sample_factory")

    from sample_factory.model.actor_critic import create_actor_critic
    from sample_factory.model.model_utils import get_rnn_size

    from sf_kickstart.kickstart.schedules import KickstartSchedule
    from sf_kickstart.sf.distillation import action_heads, num_action_parameters
    from sf_kickstart.sf.storage import KickstartLayout
    from sf_kickstart.suites.registry import prepare_env
    from sf_kickstart.teachers import TeacherRouting, TeacherSpec
    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf.setup import parse_args

    cfg, _ = parse_args([f"--preset={args.student_preset}", f"--env={args.env}", "--experiment=bench_cost"])
    info = make_env_info(cfg)
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
    banks = make_banks(setups, tasks, info)
    num_logits = num_action_parameters(info.action_space)
    layouts = {"plain": None}
    for setup, specs in setups.items():
        layouts[setup] = KickstartLayout(
            student_rnn=get_rnn_size(cfg),
            teacher_rnn=banks[(setup, "kernel")].rnn_size,
            num_logits=num_logits,
            specs=specs,
            routing=TeacherRouting.of(specs, list(tasks)),
            schedule=KickstartSchedule.from_cfg(cfg),
            heads=action_heads(info.action_space),
        )
    samples = real_observations(cfg, num_envs=2 * len(tasks), steps=8)

    print(f"env={args.env} student={args.student_preset} teacher={args.teacher_preset} cpus={os.cpu_count()} "
          f"rounds={args.rounds} calls={args.calls} train_steps={args.train_steps} batch_size={cfg.batch_size}",
          flush=True)
    print()
    inf = inference_costs(args, cfg, student, banks, samples, num_logits)
    print_inference(inf, setups)
    lrn = print_learner(learner_costs(args, cfg, info, layouts, banks), setups, cfg.batch_size)
    print_headline(inf, lrn, setups, args.headline_batch, cfg.batch_size)
    if args.throughput_json:
        print_expected_ratios(args.throughput_json, inf, lrn, setups, args.headline_batch, cfg.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
