"""Throughput: plain APPO vs kickstarted APPO (one teacher, per-task teachers), as CPU time per 1,000 env frames and
wall-clock FPS, with the spread of per-round ratios.

Same student (cfg/minigrid_large_student.yaml or --student_preset), same workers; the modes run one after the other
in short rounds, interleaved (the order rotates from round to round), so that a slow spell of a shared machine hits
every mode. Teachers are untrained copies of the small-teacher preset (weights do not change the cost of a forward).

    python -m benchmarks.throughput                                  # plain, one_teacher, per_task; 6 rounds of 25 s
    python -m benchmarks.throughput --modes=plain,per_task --rounds=10 --seconds=30
    python -m benchmarks.throughput --compare_trees=/path/to/old_checkout,/path/to/new_checkout --modes=plain,per_task
    python -m benchmarks.throughput --modes=env_only,plain,one_teacher,per_task --device=gpu --num_workers=14 ...

Two measures per run, both over the same steady-state window: from the first FPS report --warmup seconds after frames
started to be counted to the first report --seconds later, when the run is stopped with SIGINT (start-up takes from
~15 s to over a minute on a loaded machine, so a run's length is not left to --train_for_seconds):
  * CPU-s / 1K frames: user + system CPU time of the run's whole process tree (main process, learner, inference and
    rollout workers, anything they start), read from the OS (/proc via psutil), divided by the env frames counted in
    the window. This is the headline on a shared machine: it counts the work done, not the time the scheduler gave.
  * FPS: env frames / wall-clock seconds over the window (what a user sees; moves with the machine's load).
Frames are counted when the learner finishes a batch (--batch_size frames), so a window's frame count is off by up to
one batch at each end: a window also lasts until it holds --min_frames frames (30K: about 1.5 % per run, random). The tree's CPU time is sampled every 0.25 s as the sum, over every live process of the tree, of its own time plus the
time of its children that it has already reaped (cutime/cstime), so a process that exits and is reaped inside the
window still counts; a process that exits unreaped counts too (a zombie keeps its times). What sampling can miss is a
grandchild whose parent exits before reaping it: the window is flagged when the set of processes changes inside it.
As a cross-check without any sampling, the whole run's CPU time is also read from os.wait4() (the kernel's rusage of
the main process plus every descendant it waited for), divided by the run's final frame count: `run CPU-s/1K`
includes start-up (imports in every worker, loading teachers) and is reported, not used for the ratios.

Ratios are per round (each mode against plain of the same round; with --compare_trees, B against A of the same mode
and round): the median, the range and a bootstrap 95 % CI of the median over rounds. For CPU time, a ratio above 1
means more work per frame; for FPS, a ratio below 1 means slower.

env_only: the same number of worker processes, each stepping the same envs with random actions (no inference, no
learning): the ceiling the sampler could reach, and the env's own CPU cost per frame (CPU time of the stepping loops).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple

from sf_kickstart.paths import REPO_ROOT as REPO
from sf_kickstart.processes import python_env
FPS_LINE = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\]\[\d+\] Fps is .*Total num frames: (\d+)")
SAMPLE_EVERY_S = 0.25


def make_untrained_teacher(path: str, env: str, preset: str, extra: List[str]) -> str:
    import json as _json

    import torch
    from sample_factory.model.actor_critic import create_actor_critic

    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf.setup import parse_args

    cfg, _ = parse_args([f"--preset={preset}", f"--env={env}", "--experiment=bench_teacher", *extra])
    info = make_env_info(cfg)
    model = create_actor_critic(cfg, info.obs_space, info.action_space)
    os.makedirs(os.path.join(path, "checkpoint_p0"), exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        _json.dump(vars(cfg), f)
    torch.save(
        dict(train_step=0, env_steps=0, best_performance=-1e9, model=model.state_dict(), optimizer={}, curr_lr=0.0),
        os.path.join(path, "checkpoint_p0", "checkpoint_000000000_0.pth"),
    )
    return path


# ------------------------------------------------------------------------------------------------ measuring one run
class ProcessTreeMeter:
    """Samples the cumulative CPU time (user + system, seconds) of a process and all its descendants."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.samples: List[Tuple[float, float, frozenset]] = []  # (time, cpu seconds, pids alive)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            sample = self.sample()
            if sample is not None:
                self.samples.append(sample)
            self._stop.wait(SAMPLE_EVERY_S)

    def sample(self) -> Optional[Tuple[float, float, frozenset]]:
        import psutil

        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return None
        total, pids = 0.0, set()
        for p in procs:
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system + t.children_user + t.children_system
            pids.add(p.pid)
        return time.time(), total, frozenset(pids)

    def cpu_at(self, t: float) -> float:
        """Cumulative tree CPU time at wall time t, linearly interpolated between samples."""
        s = self.samples
        for (t0, c0, _), (t1, c1, _) in zip(s, s[1:]):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
        raise ValueError("time outside the sampled range")

    def stable_between(self, ta: float, tb: float) -> bool:
        sets = {pids for t, _, pids in self.samples if ta <= t <= tb}
        return len(sets) <= 1


def frame_points(log_text: str) -> List[Tuple[float, int]]:
    points = []
    for ts, frames in FPS_LINE.findall(log_text):
        points.append((datetime.strptime(ts, "%Y-%m-%d %H:%M:%S,%f").timestamp(), int(frames)))
    return points


def steady_window(points: Sequence[Tuple[float, int]], warmup_s: float):
    """The first FPS report at least warmup_s after frames started to be counted, and the last report."""
    started = [p for p in points if p[1] > 0]
    if len(started) < 2:
        return None
    window = [p for p in started if p[0] >= started[0][0] + warmup_s]
    if len(window) < 2:
        return None
    (ta, fa), (tb, fb) = window[0], window[-1]
    return (ta, fa, tb, fb) if tb > ta and fb > fa else None


@dataclass
class RunResult:
    fps: float
    cpu_per_1k: float  # steady-state window, whole process tree
    run_cpu_per_1k: float  # whole run incl. start-up, from os.wait4
    window_frames: int
    window_s: float
    tree_stable: bool
    clean_exit: bool = True  # False: killed after SIGINT did not stop it; run CPU then lacks the workers


def _default_sigint() -> None:
    # a shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored across exec: the run
    # must get Python's KeyboardInterrupt however this benchmark was started
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def measure(cmd: List[str], cwd: str, log_path: str, warmup_s: float, seconds: float, min_frames: int,
            timeout_s: float) -> RunResult:
    """Run `cmd` until frames have been counted for `seconds` (and at least `min_frames` of them) after `warmup_s`,
    then stop it with SIGINT (the run's start-up time varies a lot on a loaded machine, so its length is not left to
    --train_for_seconds)."""
    env = python_env(cwd)  # the tree measured first on PYTHONPATH
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_default_sigint
        )
        with ProcessTreeMeter(proc.pid) as meter:
            deadline, window = time.time() + timeout_s, None
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if window is None and (window := _measured_window(log_path, warmup_s, seconds, min_frames)) is not None:
                    proc.send_signal(signal.SIGINT)
                    deadline = time.time() + 120
                if time.time() > deadline:
                    proc.kill()  # its workers exit by themselves, but their CPU time is then missing from rusage
                    pid, status, rusage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if window is None:
        sys.stderr.write(read_text(log_path)[-3000:])
        raise RuntimeError(f"{' '.join(cmd)} ended (rc={proc.returncode}) before the window was measured ({log_path})")
    ta, fa, tb, fb = window
    cpu = meter.cpu_at(tb) - meter.cpu_at(ta)
    run_cpu = rusage.ru_utime + rusage.ru_stime
    return RunResult(
        fps=(fb - fa) / (tb - ta),
        cpu_per_1k=1000.0 * cpu / (fb - fa),
        run_cpu_per_1k=1000.0 * run_cpu / frame_points(read_text(log_path))[-1][1],
        window_frames=fb - fa,
        window_s=tb - ta,
        tree_stable=meter.stable_between(ta, tb),
        clean_exit=proc.returncode >= 0,
    )


def read_text(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()


def _measured_window(log_path: str, warmup_s: float, seconds: float, min_frames: int):
    win = steady_window(frame_points(read_text(log_path)), warmup_s)
    return win if win is not None and win[2] - win[0] >= seconds and win[3] - win[1] >= min_frames else None


def run_training(args, tree: str, label: str, rnd: int, teacher_args: List[str]) -> RunResult:
    exp = f"bench_{label}_r{rnd}"
    shutil.rmtree(os.path.join(args.train_dir, exp), ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "sf_kickstart.train",
        f"--preset={args.student_preset}",
        f"--env={args.env}",
        f"--experiment={exp}",
        f"--train_dir={args.train_dir}",
        f"--train_for_seconds={int(args.seconds + 600)}",  # a safety net: measure() stops the run
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
    log_path = os.path.join(args.train_dir, f"{exp}.log")
    return measure(cmd, tree, log_path, args.warmup, args.seconds, args.min_frames, timeout_s=args.seconds + 900)


def _env_worker(env_name: str, preset: str, num_envs: int, worker_idx: int, seconds: float, out) -> None:
    import numpy as np
    from sample_factory.algo.utils.make_env import make_env_func_non_batched
    from sample_factory.utils.attr_dict import AttrDict

    from sf_kickstart.sf.setup import parse_args

    cfg, _ = parse_args([f"--preset={preset}", f"--env={env_name}", "--experiment=bench_env"])
    envs = []
    for i in range(num_envs):
        env_id = worker_idx * num_envs + i
        envs.append(make_env_func_non_batched(cfg, AttrDict(worker_index=worker_idx, vector_index=i, env_id=env_id)))
    for e in envs:
        e.reset(seed=worker_idx)
    rng = np.random.default_rng(worker_idx)
    steps = 0
    start, cpu_start = time.time(), time.process_time()
    n_actions = envs[0].action_space.n
    while time.time() - start < seconds:
        for e in envs:
            e.step([int(rng.integers(n_actions))])  # SF's non-batched wrapper: list of one action, auto-reset
            steps += 1
    out.put((steps, time.time() - start, time.process_time() - cpu_start))


def run_env_only(args) -> RunResult:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(
            target=_env_worker,
            args=(args.env, args.student_preset, args.num_envs_per_worker, w, args.seconds, q),
            daemon=True,
        )
        for w in range(args.num_workers)
    ]
    for p in procs:
        p.start()
    results = [q.get(timeout=args.seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    steps = sum(r[0] for r in results)
    cpu = sum(r[2] for r in results)
    fps = sum(r[0] / r[1] for r in results)
    return RunResult(fps, 1000.0 * cpu / steps, float("nan"), steps, max(r[1] for r in results), True)


# ------------------------------------------------------------------------------------------------ statistics
def bootstrap_median_ci(values: Sequence[float], n: int = 5000, seed: int = 0) -> Tuple[float, float]:
    import numpy as np

    v = np.asarray([x for x in values if x == x], dtype=float)
    if len(v) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    medians = np.median(v[rng.integers(0, len(v), size=(n, len(v)))], axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def ratio_summary(ratios: Sequence[float]) -> Dict[str, float]:
    finite = [r for r in ratios if r == r]
    if not finite:
        return dict(median=float("nan"), lo=float("nan"), hi=float("nan"), ci_lo=float("nan"), ci_hi=float("nan"))
    ci_lo, ci_hi = bootstrap_median_ci(finite)
    return dict(median=statistics.median(finite), lo=min(finite), hi=max(finite), ci_lo=ci_lo, ci_hi=ci_hi)


def _fmt_summary(s: Dict[str, float]) -> str:
    return f"**{s['median']:.3f}** | {s['lo']:.3f}–{s['hi']:.3f} | {s['ci_lo']:.3f}–{s['ci_hi']:.3f}"


# ------------------------------------------------------------------------------------------------ set-up and report
def teacher_flags(args, modes: Sequence[str]) -> Dict[str, List[str]]:
    from sf_kickstart.suites.registry import prepare_env

    flags: Dict[str, List[str]] = {"plain": [], "env_only": []}
    if "one_teacher" in modes:
        t = make_untrained_teacher(os.path.join(args.train_dir, "teacher_one"), args.env, args.teacher_preset, [])
        flags["one_teacher"] = [f"--teacher={t}", "--kickstart_schedule=constant"]
    if "per_task" in modes:
        tasks = prepare_env(args.env).task_names(args.env)
        lines = []
        for i, task in enumerate(tasks):
            # one expert per task from the small-teacher preset (experts of one architecture run as one stacked
            # computation; mixed architectures are supported and tested, each group then runs on its own)
            t = make_untrained_teacher(os.path.join(args.train_dir, f"teacher_task{i}"), args.env, args.teacher_preset, [])
            lines.append(f"{task}: {t}")
        map_path = os.path.join(args.train_dir, "per_task_teachers.yaml")
        with open(map_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        flags["per_task"] = [f"--teachers={map_path}", "--kickstart_schedule=constant"]
    unknown = [m for m in modes if m not in flags]
    if unknown:
        raise SystemExit(f"unknown mode(s) {unknown}: choose from env_only, plain, one_teacher, per_task")
    return flags


def arms_of(args, modes: Sequence[str]) -> List[Tuple[str, str, str]]:
    """(tree label, tree path, mode) for every run of a round."""
    if not args.compare_trees:
        return [("", REPO, m) for m in modes]
    trees = [os.path.abspath(p) for p in args.compare_trees.split(",")]
    if len(trees) != 2 or not all(os.path.isfile(os.path.join(t, "sf_kickstart", "train.py")) for t in trees):
        raise SystemExit(f"--compare_trees needs two checkouts of this repo, got {args.compare_trees!r}")
    return [(label, tree, m) for m in modes for label, tree in zip("AB", trees) if m != "env_only" or label == "A"]


def arm_name(arm: Tuple[str, str, str]) -> str:
    return f"{arm[0]}:{arm[2]}" if arm[0] else arm[2]


def ratio_pairs(arms: Sequence[Tuple[str, str, str]]) -> List[Tuple[str, str]]:
    """(numerator, denominator) arm names: each mode vs plain of the same tree; with two trees, B vs A per mode."""
    names = [arm_name(a) for a in arms]
    pairs = []
    for label, _, mode in arms:
        if mode not in ("plain", "env_only") and arm_name((label, "", "plain")) in names:
            pairs.append((arm_name((label, "", mode)), arm_name((label, "", "plain"))))
    for label, _, mode in arms:
        if label == "B" and f"A:{mode}" in names:
            pairs.append((f"B:{mode}", f"A:{mode}"))
    return pairs


def report(args, arms, results: Dict[str, List[RunResult]]) -> Dict:
    names = [arm_name(a) for a in arms]
    print()
    print(f"env={args.env} student={args.student_preset} workers={args.num_workers}x{args.num_envs_per_worker} "
          f"device={args.device} seconds={args.seconds} warmup={args.warmup} rounds={args.rounds} cpus={os.cpu_count()}"
          + (f" A={args.compare_trees.split(',')[0]} B={args.compare_trees.split(',')[1]}" if args.compare_trees else ""))
    print()
    print("| run | CPU-s / 1K frames, median (rounds) | FPS, median (rounds) | run CPU-s / 1K incl. start-up, median |")
    print("|---|---|---|---|")
    for n in names:
        rs = results[n]
        cpu = ", ".join(f"{r.cpu_per_1k:.3f}" for r in rs)
        fps = ", ".join(f"{r.fps:.0f}" for r in rs)
        print(f"| {n} | {statistics.median([r.cpu_per_1k for r in rs]):.3f} ({cpu}) | "
              f"{statistics.median([r.fps for r in rs]):.0f} ({fps}) | "
              f"{statistics.median([r.run_cpu_per_1k for r in rs]):.3f} |")
    unstable = [f"{n} r{i}" for n in names for i, r in enumerate(results[n]) if not r.tree_stable]
    if unstable:
        print(f"\nprocess set changed inside the window (CPU may be undercounted): {', '.join(unstable)}")
    killed = [f"{n} r{i}" for n in names for i, r in enumerate(results[n]) if not r.clean_exit]
    if killed:
        print(f"\nkilled after SIGINT did not stop them (run CPU-s lacks the workers): {', '.join(killed)}")
    summary = {}
    pairs = ratio_pairs(arms)
    if pairs:
        print()
        print("Per-round ratios (CPU: >1 = more work per frame; FPS: <1 = slower); median, range, bootstrap 95 % CI "
              "of the median")
        print()
        print("| ratio | CPU-s/1K: per round | median | range | 95 % CI | FPS: per round | median | range | 95 % CI |")
        print("|---|---|---|---|---|---|---|---|---|")
    for num, den in pairs:
        cpu_r = [a.cpu_per_1k / b.cpu_per_1k for a, b in zip(results[num], results[den])]
        fps_r = [a.fps / b.fps for a, b in zip(results[num], results[den])]
        cs, fs = ratio_summary(cpu_r), ratio_summary(fps_r)
        summary[f"{num} / {den}"] = dict(cpu_ratios=cpu_r, fps_ratios=fps_r, cpu=cs, fps=fs)
        print(f"| {num} / {den} | {', '.join(f'{r:.3f}' for r in cpu_r)} | {_fmt_summary(cs)} | "
              f"{', '.join(f'{r:.3f}' for r in fps_r)} | {_fmt_summary(fs)} |")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="minigrid_suite")
    ap.add_argument("--student_preset", default="minigrid_large_student.yaml")
    ap.add_argument("--teacher_preset", default="minigrid_small_teacher.yaml")
    ap.add_argument("--modes", default="plain,one_teacher,per_task", help="of env_only,plain,one_teacher,per_task")
    ap.add_argument("--seconds", type=float, default=25, help="measured window of each run (wall seconds)")
    ap.add_argument("--min_frames", type=int, default=30000, help="and at least this many frames in the window "
                    "(the frame count moves in steps of one training batch)")
    ap.add_argument("--warmup", type=float, default=5, help="seconds after the first counted frames, not measured")
    ap.add_argument("--rounds", "--repeats", dest="rounds", type=int, default=6)
    ap.add_argument("--compare_trees", default=None, help="PATH_A,PATH_B: two checkouts, same modes, B/A ratios")
    ap.add_argument("--num_workers", type=int, default=2)
    ap.add_argument("--num_envs_per_worker", type=int, default=18)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--train_dir", default=os.path.join(REPO, "bench_out", "throughput"))
    ap.add_argument("--out", default=os.path.join(REPO, "bench_out", "throughput.json"))
    ap.add_argument("extra", nargs="*", help="extra flags passed to every training run (after --)")
    args = ap.parse_args(argv)
    os.makedirs(args.train_dir, exist_ok=True)
    modes = args.modes.split(",")
    arms = arms_of(args, modes)
    flags = teacher_flags(args, modes)

    results: Dict[str, List[RunResult]] = {arm_name(a): [] for a in arms}
    for rnd in range(args.rounds):
        order = arms[rnd % len(arms) :] + arms[: rnd % len(arms)]  # rotate: no arm always runs first or last
        for label, tree, mode in order:
            name = arm_name((label, tree, mode))
            if mode == "env_only":
                r = run_env_only(args)
            else:
                r = run_training(args, tree, f"{label}{mode}", rnd, flags[mode])
            results[name].append(r)
            print(f"round {rnd} {name:14s} {r.cpu_per_1k:7.3f} CPU-s/1K {r.fps:8.1f} FPS  (run incl. start-up "
                  f"{r.run_cpu_per_1k:.3f} CPU-s/1K; window {r.window_s:.0f} s, {r.window_frames} frames)", flush=True)

    summary = report(args, arms, results)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(dict(args=vars(args), results={k: [asdict(r) for r in v] for k, v in results.items()},
                       ratios=summary), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
