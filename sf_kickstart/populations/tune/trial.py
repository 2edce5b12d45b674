"""One Ray Tune trial = one population member = one Sample Factory experiment dir, trained by `sf_kickstart.train` one
perturbation interval at a time.

Where each file of a population lives: `layout.py`.

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
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from sf_kickstart.events import policy_summary_dir, read_scalars
from sf_kickstart.experiments import checkpoint_paths, latest_checkpoint
from sf_kickstart.populations.tune.layout import CHECKPOINT_META, TRAIN_LOG, member_index, member_name
from sf_kickstart.populations.tune.space import RHO_PREFIX
from sf_kickstart.populations.tune.state import checkpoint_state
from sf_kickstart.processes import run_train


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

    def train_args(self, member: int, hp: Dict[str, float], target: int) -> List[str]:
        """The member's `sf_kickstart.train` flags for one interval up to `target` frames."""
        cmd = [*self.argv, f"--train_dir={self.train_dir}",
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
    os.makedirs(exp_dir, exist_ok=True)
    log_path = os.path.join(exp_dir, TRAIN_LOG)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    rc = run_train(plan.train_args(member, hp, target), log_path, cwd=plan.cwd, python=plan.python,
                   append=True).returncode
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        with open(log_path, errors="replace") as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"{member_name(member)}: sf_kickstart.train exited with {rc} (log: {log_path})\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dict(interval_wall_s=wall, interval_cpu_s=cpu)


UNRANKED_HINT = ("Sample Factory writes reward/reward, len/len and policy_stats/* only once --stats_avg episodes ended "
                 "in one run, suite/* once an episode ended: a longer --pbt_period_env_steps (or a smaller --stats_avg) "
                 "lets every interval be ranked")


def interval_score(exp_dir: str, tag: str, since: float) -> Optional[float]:
    """The member's last value of `tag` written by this interval's run (wall time >= `since`, when the run started):
    never a value of an earlier interval, nor, after an exploit, of the member's own past. None: the run wrote none."""
    scalars, _ = read_scalars(policy_summary_dir(exp_dir))
    series = scalars.get(tag)
    fresh = series.values[series.walls >= since] if series is not None else []
    return float(fresh[-1]) if len(fresh) and math.isfinite(fresh[-1]) else None


def ranking(score: Optional[float]) -> Dict[str, object]:
    """The result fields PBT ranks members on. Without a score the member is not ranked: `score` is NaN, which Ray's
    PopulationBasedTraining leaves out of its quantiles, so the member neither exploits nor is copied at this
    interval (−inf would rank it last: it would exploit, or be copied when every member lacks one)."""
    return dict(score=float("nan") if score is None else score, metric_missing=score is None)


def note_unranked(exp_dir: str, member: int, frames: int, tag: str) -> None:
    message = (f"{member_name(member)}: the interval to {frames} frames wrote no {tag}: not ranked (neither exploits "
               f"nor is copied). {UNRANKED_HINT}")
    with open(os.path.join(exp_dir, TRAIN_LOG), "a") as f:
        f.write(f"=== {message}\n")
    print(message, file=sys.stderr, flush=True)


def run_trial(config: Dict, plan: TrialPlan) -> None:
    """Ray Tune function trainable (bound to its plan with tune.with_parameters)."""
    from ray import tune

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
        started = time.time()
        cost = run_interval(plan, member, hp, target, exp_dir)
        ckpt = latest_checkpoint(exp_dir)
        if ckpt is None:
            raise RuntimeError(f"{member_name(member)}: sf_kickstart.train saved no checkpoint")
        state = checkpoint_state(ckpt)
        score = interval_score(exp_dir, plan.metric, since=started)
        if score is None:
            note_unranked(exp_dir, member, state["env_steps"], plan.metric)
        result = dict(**ranking(score), env_steps=state["env_steps"], interval_frames=state["env_steps"] - frames,
                      member=member, started_from=source, **cost)
        frames, source = state["env_steps"], member
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy2(ckpt, os.path.join(tmp, os.path.basename(ckpt)))
            with open(os.path.join(tmp, CHECKPOINT_META), "w") as f:
                json.dump(dict(member=member, env_steps=state["env_steps"], hp=hp), f)
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(tmp))
