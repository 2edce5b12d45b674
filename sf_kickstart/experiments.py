"""A Sample Factory experiment directory, as everything in sf_kickstart reads it.

    <train_dir>/<experiment>/config.json
    <train_dir>/<experiment>/checkpoint_p<policy>/checkpoint_<train_step>_<env_steps>.pth   (and best_*.pth)
    <train_dir>/<experiment>/.summary/<policy>/events.out.tfevents.*

One resolver for an experiment given by path, by name under a train_dir, or as `zoo:NAME` / `hf://user/repo`
(`sf_kickstart.zoo`: shipped and downloaded experiments), one finder of a policy's checkpoints,
one checkpoint loader (`weights_only=False`: SF checkpoints hold numpy scalars, torch>=2.6 changed the default) with
its one error, used by teachers, the learner, the entry point, the report and the tests.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Dict, List, Optional


class ExperimentError(ValueError):
    """An experiment directory, config or checkpoint that cannot be used."""


class CheckpointLoadError(ExperimentError):
    pass


def experiment_dir_candidates(path: str, train_dir: Optional[str]) -> List[str]:
    """Where `path` may be: as given, then (relative paths) under train_dir, as sf_kickstart.train resolves it."""
    candidates = [path]
    if train_dir and not os.path.isabs(path):
        candidates.append(os.path.join(train_dir, path))
    return candidates


def find_experiment_dir(path: str, train_dir: Optional[str]) -> Optional[str]:
    """The absolute experiment directory `path` names, or None."""
    for c in experiment_dir_candidates(path, train_dir):
        if os.path.isdir(c):
            return os.path.abspath(c)
    return None


def resolve_experiment_dir(path: str, train_dir: Optional[str]) -> str:
    """The absolute experiment directory a user names: `zoo:NAME` (shipped), `hf://user/repo` (downloaded once
    under train_dir), else `path` as given or under train_dir. ExperimentError when there is none."""
    from sf_kickstart.sources import resolve_uri

    resolved = resolve_uri(path, train_dir)
    if resolved is not None:
        return resolved
    found = find_experiment_dir(path, train_dir)
    if found is None:
        looked = ", ".join(os.path.abspath(c) for c in experiment_dir_candidates(path, train_dir))
        raise ExperimentError(f"{path!r} does not exist (looked in: {looked})")
    return found


CHECKPOINT_PREFIXES = dict(latest="checkpoint", best="best")  # --load_checkpoint_kind -> SF's file name prefix


def checkpoint_paths(exp_dir: str, policy: int = 0, kind: str = "latest") -> List[str]:
    """A policy's checkpoints, oldest first (SF's names sort by train step). kind: latest (checkpoint_*) | best."""
    prefix = CHECKPOINT_PREFIXES[kind]
    return sorted(glob.glob(os.path.join(exp_dir, f"checkpoint_p{policy}", f"{prefix}_*.pth")))


def remove_partial_checkpoints(ckpt_dir: str) -> List[str]:
    """Remove SF's `<prefix>_temp` files: a checkpoint whose writing never completed (the process was killed or the
    disk was full). They match SF's `checkpoint_*` pattern and sort after every real checkpoint, so a resume would try
    to load one as the latest, and checkpoint rotation would count it as a checkpoint."""
    from sample_factory.utils.utils import log

    removed = []
    for path in glob.glob(os.path.join(ckpt_dir, "*_temp")):
        try:
            os.remove(path)
            removed.append(path)
            log.warning(f"Removed {path}: a checkpoint whose writing did not complete")
        except OSError as exc:
            log.error(f"Could not remove the partial checkpoint {path}: {exc}")
    return removed


def latest_checkpoint(exp_dir: str, policy: int = 0) -> Optional[str]:
    paths = checkpoint_paths(exp_dir, policy)
    return paths[-1] if paths else None


def load_checkpoint(path: str, device="cpu", hint: str = "") -> Dict:
    """An SF checkpoint dict; CheckpointLoadError (with `hint` appended) when it cannot be read or is not one."""
    import torch

    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is unusable
        raise CheckpointLoadError(f"Checkpoint {path!r} could not be loaded ({type(exc).__name__}: {exc}){hint}") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointLoadError(f"Checkpoint {path!r} is not a Sample Factory checkpoint (no 'model' state dict){hint}")
    return ckpt


def read_config(exp_dir: str, required: bool = False) -> Optional[Dict]:
    """config.json as a dict; None when absent (ExperimentError when `required`); ExperimentError when unreadable or
    not a JSON object."""
    path = os.path.join(exp_dir, "config.json")
    if not os.path.isfile(path):
        if required:
            raise ExperimentError(f"{exp_dir!r} has no config.json: not a Sample Factory experiment directory")
        return None
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (ValueError, OSError) as exc:
        raise ExperimentError(f"config {path!r} is not valid JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ExperimentError(f"config {path!r} is not a JSON object")
    return cfg


def format_frames(frames: Optional[float], digits: Optional[int] = 3) -> str:
    """250000 -> '250k', 2.5e6 -> '2.5M' (digits: significant digits, None: all); None -> '-'."""
    if frames is None:
        return "-"
    spec = "g" if digits is None else f".{digits}g"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(frames) >= div:
            return f"{frames / div:{spec}}{unit}"
    return f"{frames:.0f}" if digits is not None else f"{frames:g}"


def scalar_points(exp_dir: str, tag: str, policy: int = 0) -> List[tuple]:
    """[(step, value)] of one tensorboard tag of a policy (tensorboard's own reader), [] when the tag is absent."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(os.path.join(exp_dir, ".summary", str(policy)), size_guidance={"scalars": 0})
    ea.Reload()
    if tag not in ea.Tags()["scalars"]:
        return []
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def run_train(args: List[str], log_path: Optional[str] = None, timeout: Optional[float] = None,
              module: str = "sf_kickstart.train", check: bool = False):
    """`python -m sf_kickstart.train ARGS` in a subprocess from the repository root (the repo on PYTHONPATH).
    log_path: stdout and stderr go there, else they are captured. check: RuntimeError on a non-zero exit."""
    import subprocess
    import sys

    from sf_kickstart.paths import REPO_ROOT as repo

    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", module, *args]
    if log_path is None:
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    else:
        with open(log_path, "w") as log:
            proc = subprocess.run(cmd, cwd=repo, env=env, stdout=log, stderr=log, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"training failed (rc={proc.returncode})" + (f", see {log_path}" if log_path else ""))
    return proc
