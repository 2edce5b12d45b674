"""Which teacher supervises which task: `--teacher` / `--teachers` map parsing into `TeacherSpec`s, and the one
task → teacher routing (`TeacherRouting`) the bank, the CPU kernel and the learner's summaries all use.

A teacher's observation-key map (`TeacherSpec.obs_map`, teacher key -> student env key) is parsed here too: from
`--teacher_obs_map=obs:state` for the single --teacher, from a map entry's `obs_map: {obs: state}` (or
`obs_map: obs:state`) for --teachers. What the keys mean and how they are checked: `teachers.inputs`."""

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
    #: teacher obs key -> the student env's key it reads it from (keys not in it: the same name); `teachers.inputs`
    obs_map: Dict[str, str] = field(default_factory=dict)
    #: the obs keys the teacher reads (its own names), pinned by the set-up from the env it was trained on;
    #: None: its config's --student_obs_keys, else every key of the env it runs on (`inputs.model_keys`)
    obs_keys: Optional[List[str]] = None

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


OBS_MAP_FLAG = "--teacher_obs_map"


def split_names(value, where: str) -> List[str]:
    """Names from a comma-separated string or a list of such strings (flags, presets, config.json); [] for None."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise TeacherError(f"{where} must be a comma-separated list of names, got {value!r}")
    return [name.strip() for item in items for name in item.split(",") if name.strip()]


def parse_obs_map(value, where: str = OBS_MAP_FLAG) -> Dict[str, str]:
    """A teacher's observation-key map, teacher key -> student env key, from `TEACHER_KEY:ENV_KEY[,...]` (a flag or a
    map entry's string, or a list of them) or a YAML mapping; {} for None. TeacherError naming `where` otherwise."""
    if isinstance(value, dict):
        pairs = [(str(k), str(v) if isinstance(v, str) else None) for k, v in value.items()]
    else:
        pairs = [tuple(p.strip() for p in text.split(":")) if text.count(":") == 1 else (text, None)
                 for text in split_names(value, where)]
    result: Dict[str, str] = {}
    for teacher_key, env_key in pairs:
        if not teacher_key or not env_key:
            raise TeacherError(f"{where}: {teacher_key!r} is not TEACHER_KEY:ENV_KEY (e.g. obs:state), got {value!r}")
        if result.get(teacher_key, env_key) != env_key:
            raise TeacherError(f"{where} maps the teacher's key {teacher_key!r} twice: {value!r}")
        result[teacher_key] = env_key
    return result


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
                f"--teachers map entry for {task!r} must be a path or {{path: ..., rho: ..., score: ..., obs_map: ...}}"
            )
        rho = float(entry.get("rho", 1.0))
        if not np.isfinite(rho) or rho < 0:
            raise TeacherError(f"--teachers map: rho for {task!r} must be >= 0, got {rho}")
        obs_map = parse_obs_map(entry.get("obs_map"), f"--teachers map: obs_map for {task!r}")
        key = (resolve_experiment_dir(str(entry["path"]), train_dir), int(entry.get("policy", 0)))
        if key in by_path:
            spec = by_path[key]
            if "rho" in entry and spec.rho != rho:
                raise TeacherError(f"--teachers map gives teacher {spec.name!r} two different rho values")
            if "obs_map" in entry and spec.obs_map != obs_map:
                raise TeacherError(f"--teachers map gives teacher {spec.name!r} two different obs_map values")
            spec.tasks.append(task)
        else:
            spec = TeacherSpec(path=key[0], rho=rho, policy=key[1], tasks=[task], source=str(entry["path"]),
                               obs_map=obs_map)
            by_path[key] = spec
        if "score" in entry:
            spec.task_scores[task] = _score(entry["score"], task)
    return list(by_path.values())


def teacher_specs_from_cfg(cfg, task_names: Sequence[str]) -> List[TeacherSpec]:
    teacher = getattr(cfg, "teacher", None)
    teachers = getattr(cfg, "teachers", None)
    if teacher and teachers:
        raise TeacherError("Give either --teacher (one teacher for all tasks) or --teachers (a map), not both")
    obs_map = parse_obs_map(getattr(cfg, "teacher_obs_map", None))
    if obs_map and not teacher:
        raise TeacherError(f"{OBS_MAP_FLAG} is the single --teacher's; a --teachers map gives each entry its obs_map")
    if teachers:
        specs = parse_teacher_map(teachers, cfg.train_dir, task_names)
    elif teacher:
        path = resolve_experiment_dir(teacher, cfg.train_dir)
        specs = [TeacherSpec(path=path, tasks=list(task_names), source=teacher, obs_map=obs_map)]
    else:
        return []
    for spec in specs:
        spec.trust = getattr(cfg, "trust_checkpoint", None)
    return specs
