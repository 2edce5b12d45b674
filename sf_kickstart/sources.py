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
from typing import Dict

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
