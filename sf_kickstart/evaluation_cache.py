"""The evaluation cache of an experiment dir (ground floor): `<exp>/evaluation/scores_<policy>_p<i>.json`, written by
`python -m sf_kickstart.evaluate` (`agents.evaluate`), read by the zoo listing and by adaptive λ (a teacher's G_T).

A teacher shipped in the package is read-only data: its shipped cache (a 100-episode evaluation, the numbers on its
card) is read, never written; evaluating it again writes `<train_dir>/zoo/<name>/evaluation/`, which readers given
that train_dir then prefer (`sources.writable_dir`)."""

from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Optional

from sf_kickstart.sources import writable_dir

FORMAT = "sf_kickstart.scores/1"
EVAL_DIR = "evaluation"


def report_dir(exp_dir: str, train_dir: Optional[str] = None) -> str:
    """Where an experiment's evaluation cache and reports are written."""
    return os.path.join(writable_dir(exp_dir, train_dir), EVAL_DIR)


def cache_path(exp_dir: str, policy: str = "greedy", policy_index: int = 0, train_dir: Optional[str] = None) -> str:
    """Where the cache is written."""
    return os.path.join(report_dir(exp_dir, train_dir), f"scores_{policy}_p{policy_index}.json")


def cache_paths(exp_dir: str, policy: str = "greedy", policy_index: int = 0, train_dir: Optional[str] = None) -> List[str]:
    """Where the cache is read from, in order: the written one, then a shipped teacher's own."""
    shipped = os.path.join(exp_dir, EVAL_DIR, f"scores_{policy}_p{policy_index}.json")
    return list(dict.fromkeys([cache_path(exp_dir, policy, policy_index, train_dir), shipped]))


def read_scores(exp_dir: str, policy: str = "greedy", policy_index: int = 0, train_dir: Optional[str] = None) -> Optional[dict]:
    for path in cache_paths(exp_dir, policy, policy_index, train_dir):
        if os.path.isfile(path):
            with open(path) as f:
                data = json.load(f)
            if isinstance(data, dict) and data.get("format") == FORMAT:
                return data
    return None


def read_task_scores(exp_dir: str, policy: str = "greedy", policy_index: int = 0,
                     train_dir: Optional[str] = None) -> Optional[Dict[str, float]]:
    """A (teacher) experiment's evaluated per-task scores on the suite-score scale ({task: score}, see the module
    docstring), from its cache; None when it has not been evaluated (`python -m sf_kickstart.evaluate DIR`)."""
    data = read_scores(exp_dir, policy, policy_index, train_dir)
    return None if data is None else {t: float(v["score"]) for t, v in data["tasks"].items()}


def write_json(path: str, data: dict) -> bool:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
        return True
    except OSError as exc:  # e.g. a zoo teacher inside a read-only installation
        print(f"sf_kickstart: warning: could not write {path}: {exc}", file=sys.stderr)
        return False
