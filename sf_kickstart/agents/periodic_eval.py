"""Periodic evaluation while training: `--eval_every_frames=N --eval_episodes=K` (Sample Factory issues #43, #138).

Every N env frames (of policy 0) the runner asks the learners for a checkpoint and, once the new file is on disk,
spawns one evaluation process (`python -m sf_kickstart.agents.periodic_eval`, at nice +10, one torch thread) that loads it
— a frozen copy of the weights, outside the training processes — and plays K greedy episodes per task with
`sf_kickstart.evaluate` (same vectorised player and scores as the offline evaluation, seeds 0..K-1). When it is done
the runner writes, in each policy's tensorboard summaries at the checkpoint's env frames:
  eval/<task>          the task's score on the suite-score scale (capped normalised score; the mean return for an
                       env without normalisation)
  eval/<task>_return   its mean raw return
  eval/suite_score     the suite score (mean over tasks of the above)
One evaluation runs at a time (a threshold passed while one runs is evaluated when it ends, on the newest
checkpoint). When training ends, the final checkpoint is evaluated before the run returns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from sample_factory.algo.runners.runner import AlgoObserver
from sample_factory.utils.utils import experiment_dir, log

from sf_kickstart import tags
from sf_kickstart.experiments import latest_checkpoint

EVAL_NICE = 10


def latest_checkpoints(exp_dir: str, num_policies: int) -> List[Optional[str]]:
    return [latest_checkpoint(exp_dir, pid) for pid in range(num_policies)]


def freeze(checkpoint: str, directory: str) -> Optional[str]:
    """A copy of the checkpoint that SF's checkpoint rotation cannot remove (a hard link where possible)."""
    target = os.path.join(directory, os.path.basename(checkpoint))
    try:
        try:
            os.link(checkpoint, target)
        except OSError:
            shutil.copyfile(checkpoint, target)
    except FileNotFoundError:
        return None
    return target


class PeriodicEval(AlgoObserver):
    def __init__(self, cfg):
        self.cfg = cfg
        self.every = float(cfg.eval_every_frames)
        self.exp_dir = experiment_dir(cfg=cfg, mkdir=False)
        self.next_at = self.every
        self.waiting_since: Optional[List[Optional[str]]] = None  # checkpoints when a save was requested
        self.proc: Optional[subprocess.Popen] = None
        self.out_path: Optional[str] = None
        self.tmp: Optional[str] = None
        self.evaluated: Optional[str] = None  # policy 0 checkpoint of the last evaluation

    def on_training_step(self, runner, training_iteration_since_resume: int) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                return
            self._collect(runner)
        if self.waiting_since is not None:
            now = latest_checkpoints(self.exp_dir, self.cfg.num_policies)
            if now[0] is not None and now[0] != self.waiting_since[0]:
                self.waiting_since = None
                self._spawn(now)
            return
        frames = runner.env_steps.get(0, 0)
        if frames >= self.next_at:
            self.next_at = (frames // self.every + 1) * self.every
            self.waiting_since = latest_checkpoints(self.exp_dir, self.cfg.num_policies)
            runner._save_policy()  # SF's periodic-save signal: the learners write a checkpoint now

    def _spawn(self, checkpoints: List[Optional[str]]) -> None:
        if checkpoints[0] == self.evaluated:
            return
        self.tmp = tempfile.mkdtemp(prefix="periodic_eval_")
        frozen = [freeze(c, self.tmp) if c else None for c in checkpoints]
        if frozen[0] is None:  # SF removed it already (--keep_checkpoints): the next training step finds a newer one
            self.waiting_since = [None]
            return
        self.evaluated = checkpoints[0]
        self.out_path = os.path.join(self.tmp, "result.json")
        args = [sys.executable, "-m", "sf_kickstart.agents.periodic_eval", self.exp_dir, self.out_path,
                str(self.cfg.eval_episodes)] + [c or "" for c in frozen]
        log.info(f"Periodic evaluation of {os.path.basename(checkpoints[0])} ({self.cfg.eval_episodes} episodes per task)")
        self.proc = subprocess.Popen(args, preexec_fn=lambda: os.nice(EVAL_NICE))

    def _collect(self, runner) -> None:
        proc, self.proc = self.proc, None
        try:
            with open(self.out_path) as f:
                results = json.load(f) if proc.returncode == 0 else None
        except (OSError, json.JSONDecodeError):
            results = None
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if results is None:
            log.error(f"Periodic evaluation failed (exit code {proc.returncode}); training goes on")
            return
        for pid, r in results.items():
            writer = runner.writers[int(pid)]
            for task, v in r["tasks"].items():
                writer.add_scalar(tags.eval_task_score(task), v["score"], r["env_steps"])
                writer.add_scalar(tags.eval_task_return(task), v["mean_return"], r["env_steps"])
            writer.add_scalar(tags.EVAL_SUITE_SCORE, r["suite_score"], r["env_steps"])
            writer.flush()
            log.info(f"Periodic evaluation, policy {pid} at {r['env_steps']} frames: suite score {r['suite_score']:.2f}")

    def finish(self, runner, timeout_s: float = 900.0) -> None:
        """After the run: wait for an evaluation in flight, then evaluate the final checkpoint (a run that did not
        end normally only stops the evaluation in flight)."""
        from sample_factory.algo.utils.misc import ExperimentStatus

        ok = runner.status == ExperimentStatus.SUCCESS
        if not ok and self.proc is not None:
            self.proc.kill()
        for final in (False, True):
            if final and ok:
                self._spawn(latest_checkpoints(self.exp_dir, self.cfg.num_policies))
            if self.proc is not None:
                try:
                    self.proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                self._collect(runner)


def install(cfg, runner) -> Optional[PeriodicEval]:
    if not getattr(cfg, "eval_every_frames", 0):
        return None
    observer = PeriodicEval(cfg)
    runner.register_observer(observer)
    return observer


def finish(runner) -> None:
    for observer in runner.observers:
        if isinstance(observer, PeriodicEval):
            observer.finish(runner)


def evaluate_checkpoints(exp_dir: str, episodes: int, checkpoints: List[str]) -> Dict[str, dict]:
    """The evaluation process: each policy's checkpoint, K greedy episodes per task."""
    import torch

    from sf_kickstart.agents.agent import experiment_cfg
    from sf_kickstart.agents.evaluate import Setup, evaluate_agent
    from sf_kickstart.suites.registry import suite_for_env

    torch.set_num_threads(1)
    env_cfg = experiment_cfg(exp_dir)
    env_cfg.device = "cpu"
    setup = Setup(env_cfg, suite_for_env(env_cfg.env).task_envs(env_cfg.env), episodes, 0, "greedy",
                  envs_per_task=min(episodes, 8), show_progress=False)
    spaces = setup.spaces()
    out = {}
    for pid, ckpt in enumerate(checkpoints):
        if ckpt:
            s = evaluate_agent(exp_dir, setup, spaces, pid, checkpoint=ckpt, write_cache=False)
            out[str(pid)] = {k: s[k] for k in ("env_steps", "suite_score", "checkpoint")}
            out[str(pid)]["tasks"] = {t: dict(score=v["score"], mean_return=v["mean_return"]) for t, v in s["tasks"].items()}
    return out


if __name__ == "__main__":
    exp, out_path, k, *ckpts = sys.argv[1:]
    result = evaluate_checkpoints(exp, int(k), ckpts)
    with open(out_path, "w") as f:
        json.dump(result, f)
