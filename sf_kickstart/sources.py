"""Teachers you can name: the shipped zoo (`zoo:NAME`, experiment dirs inside this package), experiments under
`--train_dir`, and Hugging Face downloads (`hf://user/repo`, see `sf_kickstart.hub`).

`python -m sf_kickstart.zoo [--train_dir=DIR] [--env=ENV]` lists them with env, architecture, frames and evaluated
suite score, and which can teach `--env` (same observation and action spaces).

A shipped teacher is a Sample Factory experiment dir (config.json, checkpoint_p0/ with one checkpoint whose
optimizer state is stripped, evaluation/ with its cached scores) plus a card, README.md.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Dict, List, Optional

ZOO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zoo")  # the shipped teachers (data)
ZOO_PREFIX = "zoo:"


def shipped() -> Dict[str, str]:
    """name -> directory of every teacher shipped in the package."""
    return {
        os.path.basename(d): d
        for d in sorted(glob.glob(os.path.join(ZOO_DIR, "*")))
        if os.path.isfile(os.path.join(d, "config.json"))
    }


def resolve_uri(path: str, train_dir: Optional[str]) -> Optional[str]:
    """zoo:NAME -> the shipped dir, hf://user/repo -> its downloaded dir; None for a plain path (which
    `experiments.resolve_experiment_dir`, the one resolver calling this, looks up itself)."""
    from sf_kickstart import hub
    from sf_kickstart.experiments import ExperimentError

    if not isinstance(path, str):
        return None
    if hub.is_hub_uri(path):
        return hub.fetch(path, train_dir)
    if path.startswith(ZOO_PREFIX):
        name = path[len(ZOO_PREFIX) :]
        found = shipped()
        if name not in found:
            raise ExperimentError(f"{path!r} is not shipped: the zoo has {', '.join(ZOO_PREFIX + n for n in found) or 'none'}")
        return found[name]
    return None


def experiment_dirs(root: str) -> List[str]:
    """Experiment dirs (config.json + checkpoint_p0/) under root, any depth (train_dir/hub/<user>/<repo> too)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        if "config.json" in filenames and "checkpoint_p0" in dirnames:
            out.append(dirpath)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return out


_CKPT_RE = re.compile(r"checkpoint_(\d+)_(\d+)\.pth$")


def trained_frames(exp_dir: str) -> Optional[int]:
    """Env frames of the latest checkpoint, from its name (SF: checkpoint_<train step>_<env steps>.pth)."""
    names = sorted(glob.glob(os.path.join(exp_dir, "checkpoint_p0", "checkpoint_*.pth")))
    m = _CKPT_RE.search(os.path.basename(names[-1])) if names else None
    return int(m.group(2)) if m else None
