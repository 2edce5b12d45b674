"""Teachers you can name: the shipped zoo (`zoo:NAME`, experiment dirs inside this package), experiments under
`--train_dir`, and Hugging Face downloads (`hf://user/repo`, see `sf_kickstart.hub`).

`python -m sf_kickstart.zoo [--train_dir=DIR] [--env=ENV]` lists them with env, architecture, frames and evaluated
suite score, and which can teach `--env` (same observation and action spaces).

A shipped teacher is a Sample Factory experiment dir (config.json, checkpoint_p0/ with one checkpoint whose
optimizer state is stripped, evaluation/ with its cached scores) plus a card, README.md.

Ground floor: imports `errors` and `paths` only; `experiments.resolve_experiment_dir` calls it (and `hub`).
"""

from __future__ import annotations

import glob
import os
from typing import Dict, Optional

from sf_kickstart.errors import ExperimentError, Fail
from sf_kickstart.paths import PACKAGE_DIR

ZOO_DIR = os.path.join(PACKAGE_DIR, "zoo")  # the shipped teachers (data)
ZOO_PREFIX = "zoo:"


def shipped() -> Dict[str, str]:
    """name -> directory of every teacher shipped in the package."""
    return {
        os.path.basename(d): d
        for d in sorted(glob.glob(os.path.join(ZOO_DIR, "*")))
        if os.path.isfile(os.path.join(d, "config.json"))
    }


def is_shipped(exp_dir: str) -> bool:
    """True for an experiment dir inside the package's zoo (read-only data: nothing may be written there)."""
    zoo = os.path.realpath(ZOO_DIR)
    return os.path.commonpath([os.path.realpath(exp_dir), zoo]) == zoo


def writable_dir(exp_dir: str, train_dir: Optional[str]) -> str:
    """Where files about an experiment are written (its evaluation cache and reports, enjoy's video): the experiment
    dir itself, except for a teacher shipped in the package, whose files go to `<train_dir>/zoo/<name>/`."""
    if not is_shipped(exp_dir):
        return exp_dir
    return os.path.join(os.path.abspath(train_dir or "train_dir"), "zoo", os.path.basename(os.path.normpath(exp_dir)))


def label(exp_dir: str) -> str:
    """How a record names an experiment: `zoo:NAME` for a shipped one (never this machine's install path), else its
    absolute path."""
    return ZOO_PREFIX + os.path.basename(os.path.normpath(exp_dir)) if is_shipped(exp_dir) else os.path.abspath(exp_dir)


def is_zoo_uri(path) -> bool:
    return isinstance(path, str) and path.startswith(ZOO_PREFIX)


def shipped_dir(uri: str, fail: Fail = ExperimentError) -> str:
    """zoo:NAME -> the shipped dir; `fail(message)` listing the zoo when NAME is not shipped. Called by
    `experiments.resolve_experiment_dir`, the one resolver of a name a user gives."""
    name = uri[len(ZOO_PREFIX) :]
    found = shipped()
    if name not in found:
        raise fail(f"{uri!r} is not shipped: the zoo has {', '.join(ZOO_PREFIX + n for n in found) or 'none'}")
    return found[name]
