"""The evaluation cache of an experiment dir (ground floor): `<exp>/evaluation/scores_<policy>_p<i>.json`, written by
`python -m sf_kickstart.evaluate` (`agents.evaluate`), read by the zoo listing and by adaptive λ (a teacher's G_T)."""

from __future__ import annotations

import json
import os
import sys
from typing import Dict, Optional

FORMAT = "sf_kickstart.scores/1"
EVAL_DIR = "evaluation"


def cache_path(exp_dir: str, policy: str = "greedy", policy_index: int = 0) -> str:
    return os.path.join(exp_dir, EVAL_DIR, f"scores_{policy}_p{policy_index}.json")


def read_scores(exp_dir: str, policy: str = "greedy", policy_index: int = 0) -> Optional[dict]:
    path = cache_path(exp_dir, policy, policy_index)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        data = json.load(f)
    return data if data.get("format") == FORMAT else None


def read_task_scores(exp_dir: str, policy: str = "greedy", policy_index: int = 0) -> Optional[Dict[str, float]]:
    """A (teacher) experiment's evaluated per-task scores on the suite-score scale ({task: score}, see the module
    docstring), from its cache; None when it has not been evaluated (`python -m sf_kickstart.evaluate DIR`)."""
    data = read_scores(exp_dir, policy, policy_index)
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
