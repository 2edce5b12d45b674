"""Which teacher supervises which task: `--teacher` / `--teachers` map parsing into `TeacherSpec`s, and the one
task → teacher routing (`TeacherRouting`) the bank, the CPU kernel and the learner's summaries all use."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sf_kickstart import experiments
from sf_kickstart.errors import UserError, prefixed


class TeacherError(UserError):
    """A teacher that cannot be used: missing, no checkpoint, corrupt, or incompatible spaces."""


@dataclass
class TeacherSpec:
    path: str  # resolved experiment directory
    rho: float = 1.0
    policy: int = 0
    tasks: List[str] = field(default_factory=list)  # task names it supervises; [] with a single --teacher = all
    checkpoint: Optional[str] = None  # a given checkpoint file instead of the latest (evaluation, enjoy)
    #: its score per task on the suite-score scale, from the map's `score:` entries (adaptive λ's G_T); {} = not given
    task_scores: Dict[str, float] = field(default_factory=dict)
    source: Optional[str] = None  # the teacher as the user named it (a dir, zoo:NAME, hf://user/repo[@revision])
    trust: Optional[str] = None  # the run's --trust_checkpoint (checkpoints.TrustPolicy)
    sha256: Optional[str] = None  # pinned once verified: a checkpoint with other bytes is refused

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.path))


def resolve_experiment_dir(path: str, train_dir: Optional[str]) -> str:
    """`experiments.resolve_experiment_dir` (paths, names under train_dir, zoo:NAME, hf://user/repo), failing with a
    TeacherError."""
    hint = ". A teacher is a Sample Factory experiment directory with config.json and checkpoint_p0/"
    return experiments.resolve_experiment_dir(path, train_dir, prefixed("Teacher", TeacherError, hint))


@dataclass(frozen=True)
class TeacherRouting:
    """Task index -> teacher index (-1: the task has no teacher), over the suite's full task list."""

    task_names: Tuple[str, ...]
    teacher_of_task: Tuple[int, ...]

    @staticmethod
    def of(specs: Sequence[TeacherSpec], task_names: Sequence[str]) -> "TeacherRouting":
        """A map names each task once, so a task has at most one teacher."""
        task_names = list(task_names)
        owners = [-1] * len(task_names)
        for i, spec in enumerate(specs):
            for task in spec.tasks:
                owners[task_names.index(task)] = i
        return TeacherRouting(tuple(task_names), tuple(owners))

    @property
    def table(self) -> np.ndarray:
        """teacher_of_task as an int64 array (indexable by an array of task ids)."""
        return np.asarray(self.teacher_of_task, dtype=np.int64)

    @property
    def every_task_has_a_teacher(self) -> bool:
        return all(t >= 0 for t in self.teacher_of_task)

    def teacher_of_rows(self, task_ids: Optional[np.ndarray], n: int) -> np.ndarray:
        """Teacher index per row from its task index (None: no task id in the observations, every row is task 0)."""
        if task_ids is None:
            return np.repeat(self.table[:1], n)
        return self.table[task_ids]


def _load_map(path: str) -> Dict:
    import yaml

    if not os.path.isfile(path):
        raise TeacherError(f"--teachers map file {path!r} does not exist")
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise TeacherError(f"--teachers map {path!r} is not valid YAML: {exc}") from exc
    if isinstance(data, dict) and "teachers" in data and isinstance(data["teachers"], dict):
        data = data["teachers"]
    if not isinstance(data, dict) or not data:
        raise TeacherError(f"--teachers map {path!r} must be a non-empty mapping task name -> experiment dir")
    return data


def _score(value, task: str) -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        score = float("nan")
    if not np.isfinite(score):
        raise TeacherError(f"--teachers map: score for {task!r} must be a number, got {value!r}")
    return score


def parse_teacher_map(path: str, train_dir: Optional[str], task_names: Sequence[str]) -> List[TeacherSpec]:
    data = _load_map(path)
    unknown = [t for t in data if t not in task_names]
    if unknown:
        raise TeacherError(
            f"--teachers map {path!r} names task(s) {unknown} that are not in this suite. Suite tasks: {list(task_names)}"
        )
    by_path: Dict[Tuple[str, int], TeacherSpec] = {}
    for task, entry in data.items():
        if isinstance(entry, str):
            entry = dict(path=entry)
        if not isinstance(entry, dict) or "path" not in entry:
            raise TeacherError(
                f"--teachers map entry for {task!r} must be a path or {{path: ..., rho: ..., score: ...}}"
            )
        rho = float(entry.get("rho", 1.0))
        if not np.isfinite(rho) or rho < 0:
            raise TeacherError(f"--teachers map: rho for {task!r} must be >= 0, got {rho}")
        key = (resolve_experiment_dir(str(entry["path"]), train_dir), int(entry.get("policy", 0)))
        if key in by_path:
            spec = by_path[key]
            if "rho" in entry and spec.rho != rho:
                raise TeacherError(f"--teachers map gives teacher {spec.name!r} two different rho values")
            spec.tasks.append(task)
        else:
            spec = TeacherSpec(path=key[0], rho=rho, policy=key[1], tasks=[task], source=str(entry["path"]))
            by_path[key] = spec
        if "score" in entry:
            spec.task_scores[task] = _score(entry["score"], task)
    return list(by_path.values())


def teacher_specs_from_cfg(cfg, task_names: Sequence[str]) -> List[TeacherSpec]:
    teacher = getattr(cfg, "teacher", None)
    teachers = getattr(cfg, "teachers", None)
    if teacher and teachers:
        raise TeacherError("Give either --teacher (one teacher for all tasks) or --teachers (a map), not both")
    if teachers:
        specs = parse_teacher_map(teachers, cfg.train_dir, task_names)
    elif teacher:
        path = resolve_experiment_dir(teacher, cfg.train_dir)
        specs = [TeacherSpec(path=path, tasks=list(task_names), source=teacher)]
    else:
        return []
    for spec in specs:
        spec.trust = getattr(cfg, "trust_checkpoint", None)
    return specs
