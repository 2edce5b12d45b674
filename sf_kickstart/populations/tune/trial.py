"""One Ray Tune trial = one population member = one Sample Factory experiment dir, trained by `sf_kickstart.train` one
perturbation interval at a time.

Layout of a population (`<train_dir>/<experiment>/`, Tune's storage for the experiment as well):
  member_NN/     the member's Sample Factory experiment (config.json, checkpoint_p0/, .summary/0/, sf_log.txt,
                 tune_train.log: the output of its `sf_kickstart.train` runs)
  trial_NN/      Tune's trial dir (result.json, checkpoint_NNNNNN/ with the member's Sample Factory checkpoint)
  pbt_global.txt Tune's PBT log (one JSON line per exploit), tune_population.json (ours: what the report reads)

Each interval: the member's latest checkpoint gets its hyperparameters (state.checkpoint_state), then
`sf_kickstart.train --restart_behavior=resume --train_for_env_steps=<next multiple of the interval>` runs in a
subprocess, the metric is read from the member's summaries, and the checkpoint is reported to Tune. When Tune starts
the trial from a checkpoint — its own after a crash, or a better member's on exploit — that checkpoint replaces the
member's: weights, optimizer, kickstart state and frames all come from it, and the member's (mutated)
hyperparameters are written into it before the next interval.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from sf_kickstart.paths import REPO_ROOT
from sf_kickstart.experiments import checkpoint_paths, latest_checkpoint
from sf_kickstart.populations.tune.space import RHO_PREFIX

CHECKPOINT_META = "member.json"


def member_index(trial_id: str) -> int:
    """Tune's trial ids end in the trial's creation index: '3f2a1_00001' -> 1."""
    return int(trial_id.rsplit("_", 1)[-1])


def member_name(index: int) -> str:
    return f"member_{index:02d}"


def trial_dirname(trial) -> str:
    return f"trial_{member_index(trial.trial_id):02d}"


@dataclass
class TrialPlan:
    """Everything a trial needs, built and checked in the driver before any trial starts."""

    argv: List[str]  # sf_kickstart.train flags passed through (without experiment, train_dir, budget, PBT flags)
    train_dir: str  # absolute; the members' too, so teacher names resolve under it as for sf_kickstart.train
    experiment: str  # the population; member NN is the Sample Factory experiment `<experiment>/member_NN`
    total_frames: int
    interval: int
    metric: str  # tensorboard tag
    cwd: str  # where relative paths in argv mean something (the driver's working directory)
    seed: Optional[int] = None
    python: str = sys.executable

    @property
    def root(self) -> str:
        return os.path.join(self.train_dir, self.experiment)

    def train_command(self, member: int, hp: Dict[str, float], target: int) -> List[str]:
        cmd = [self.python, "-m", "sf_kickstart.train", *self.argv, f"--train_dir={self.train_dir}",
               f"--experiment={self.experiment}/{member_name(member)}", "--restart_behavior=resume",
               f"--train_for_env_steps={target}",
               "--with_pbt=False", "--num_policies=1"]
        cmd += [f"--{k}={v!r}" for k, v in hp.items() if not k.startswith(RHO_PREFIX)]  # ρ_i: checkpoint only
        if self.seed is not None:
            cmd.append(f"--seed={self.seed + member}")
        return cmd


def install_checkpoint(src_dir: Optional[str], exp_dir: str) -> Optional[Dict]:
    """Make the checkpoint in Tune's checkpoint dir `src_dir` the member's only checkpoint (None: start from scratch,
    dropping what an interval that never reported may have saved). Returns the checkpoint's meta (whose it was)."""
    ckpt_dir = os.path.join(exp_dir, "checkpoint_p0")
    os.makedirs(ckpt_dir, exist_ok=True)
    for old in checkpoint_paths(exp_dir, kind="latest") + checkpoint_paths(exp_dir, kind="best"):
        os.remove(old)
    if src_dir is None:
        return None
    (pth,) = glob.glob(os.path.join(src_dir, "checkpoint_*.pth"))
    shutil.copy2(pth, os.path.join(ckpt_dir, os.path.basename(pth)))
    with open(os.path.join(src_dir, CHECKPOINT_META)) as f:
        return json.load(f)


def run_interval(plan: TrialPlan, member: int, hp: Dict[str, float], target: int, exp_dir: str) -> Dict[str, float]:
    """One `sf_kickstart.train` run up to `target` frames; its wall and CPU seconds. A failed run raises (Tune then
    retries the trial from its last checkpoint)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (plan.cwd, repo_root(), env.get("PYTHONPATH")) if p)
    os.makedirs(exp_dir, exist_ok=True)
    log_path = os.path.join(exp_dir, "tune_train.log")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    with open(log_path, "a") as log:
        log.write(f"\n=== {' '.join(plan.train_command(member, hp, target))}\n")
        log.flush()
        rc = subprocess.run(plan.train_command(member, hp, target), cwd=plan.cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT).returncode
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        with open(log_path, errors="replace") as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"{member_name(member)}: sf_kickstart.train exited with {rc} (log: {log_path})\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dict(interval_wall_s=wall, interval_cpu_s=cpu)


def repo_root() -> str:
    return REPO_ROOT


def latest_metric(exp_dir: str, tag: str) -> Optional[float]:
    from sf_kickstart.report.io import read_scalars

    scalars, _ = read_scalars(os.path.join(exp_dir, ".summary", "0"))
    series = scalars.get(tag)
    return float(series.values[-1]) if series is not None and len(series) else None


def run_trial(config: Dict, plan: TrialPlan) -> None:
    """Ray Tune function trainable (bound to its plan with tune.with_parameters)."""
    from ray import tune

    from sf_kickstart.populations.tune.state import checkpoint_state

    member = member_index(tune.get_context().get_trial_id())
    exp_dir = os.path.join(plan.root, member_name(member))
    hp = dict(config["hp"])
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            meta = install_checkpoint(d, exp_dir)
    else:
        meta = install_checkpoint(None, exp_dir)
    frames = checkpoint_state(latest_checkpoint(exp_dir))["env_steps"] if meta else 0
    source = meta["member"] if meta else member
    while frames < plan.total_frames:
        target = min(plan.total_frames, (frames // plan.interval + 1) * plan.interval)
        ckpt = latest_checkpoint(exp_dir)
        if ckpt is not None:
            checkpoint_state(ckpt, hp)
        cost = run_interval(plan, member, hp, target, exp_dir)
        ckpt = latest_checkpoint(exp_dir)
        if ckpt is None:
            raise RuntimeError(f"{member_name(member)}: sf_kickstart.train saved no checkpoint")
        state = checkpoint_state(ckpt)
        score = latest_metric(exp_dir, plan.metric)
        result = dict(score=float("-inf") if score is None else score, metric_missing=score is None,
                      env_steps=state["env_steps"], interval_frames=state["env_steps"] - frames, member=member,
                      started_from=source, **cost)
        frames, source = state["env_steps"], member
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy2(ckpt, os.path.join(tmp, os.path.basename(ckpt)))
            with open(os.path.join(tmp, CHECKPOINT_META), "w") as f:
                json.dump(dict(member=member, env_steps=state["env_steps"], hp=hp), f)
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(tmp))
