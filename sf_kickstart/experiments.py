"""A Sample Factory experiment directory, as everything in sf_kickstart reads it.

    <train_dir>/<experiment>/config.json
    <train_dir>/<experiment>/checkpoint_p<policy>/checkpoint_<train_step>_<env_steps>.pth   (and best_*.pth)
    <train_dir>/<experiment>/.summary/<policy>/events.out.tfevents.*

One resolver for an experiment given by path, by name under a train_dir, or as `zoo:NAME` / `hf://user/repo`
(`sources`: shipped experiments, `hub`: downloaded ones), one finder of a policy's checkpoints and one parser of their
names, one finder of experiment dirs under a root, one config reader, used by teachers, the learner, the entry
points, the report, the populations and the tests (checkpoints are loaded by `checkpoints`, the one loader).
Ground floor: imports `errors`, `sources`, `hub`.
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Callable, Dict, List, Optional, Sequence

from sf_kickstart import hub, sources
from sf_kickstart.errors import ExperimentError, Fail


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


def resolve_experiment_dir(path: str, train_dir: Optional[str], fail: Fail = ExperimentError) -> str:
    """The absolute experiment directory a user names: `zoo:NAME` (shipped), `hf://user/repo` (downloaded once
    under train_dir), else `path` as given or under train_dir. `fail(message)` (an ExperimentError by default, e.g.
    `errors.prefixed("Teacher", TeacherError)`) when there is none."""
    if hub.is_hub_uri(path):
        return hub.fetch(path, train_dir, fail)
    if sources.is_zoo_uri(path):
        return sources.shipped_dir(path, fail)
    found = find_experiment_dir(path, train_dir)
    if found is None:
        looked = ", ".join(os.path.abspath(c) for c in experiment_dir_candidates(path, train_dir))
        raise fail(f"{path!r} does not exist (looked in: {looked})")
    return found


def find_dirs(roots: Sequence[str], holds: Callable[[str, List[str], List[str]], bool]) -> List[str]:
    """Every directory under `roots` (any depth, sorted, hidden dirs skipped) for which `holds(dirpath, dirnames,
    filenames)`; a match is not searched further (an experiment holds no experiments). Paths normalised, each real
    directory once."""
    found, seen = [], set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            if holds(dirpath, dirnames, filenames):
                if os.path.realpath(dirpath) not in seen:
                    seen.add(os.path.realpath(dirpath))
                    found.append(os.path.normpath(dirpath))
                dirnames[:] = []
                continue
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return found


def experiment_dirs(root: str) -> List[str]:
    """Experiment dirs (config.json + checkpoint_p0/) under root, any depth (train_dir/hub/<user>/<repo> too)."""
    return find_dirs([root], lambda _, dirnames, filenames: "config.json" in filenames and "checkpoint_p0" in dirnames)


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


_CHECKPOINT_NAME = re.compile(r"^(?:checkpoint|best)_(\d+)_(\d+)(?:_.+)?\.pth$")


def checkpoint_frames(path: Optional[str]) -> Optional[int]:
    """Env frames of a checkpoint, from its name (SF: `checkpoint_<train step>_<env steps>.pth`,
    `best_<train step>_<env steps>_<metric>_<value>.pth`); None for another name."""
    m = _CHECKPOINT_NAME.match(os.path.basename(path)) if path else None
    return int(m.group(2)) if m else None


def trained_frames(exp_dir: str, policy: int = 0) -> Optional[int]:
    """Env frames of the policy's latest checkpoint, from its name; None without one."""
    return checkpoint_frames(latest_checkpoint(exp_dir, policy))


def read_config(exp_dir: str, required: bool = False, fail: Fail = ExperimentError) -> Optional[Dict]:
    """config.json as a dict; None when absent (`fail(message)`, an ExperimentError by default, when `required`);
    `fail(message)` when unreadable or not a JSON object."""
    path = os.path.join(exp_dir, "config.json")
    if not os.path.isfile(path):
        if required:
            raise fail(f"{exp_dir!r} has no config.json: not a Sample Factory experiment directory")
        return None
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (ValueError, OSError) as exc:
        raise fail(f"config {path!r} is not valid JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise fail(f"config {path!r} is not a JSON object")
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
