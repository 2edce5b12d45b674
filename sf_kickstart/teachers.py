"""Frozen teachers loaded from Sample Factory experiment directories, and the bank that routes task_id → teacher.

A teacher is any SF experiment dir: its own `config.json` decides the architecture (built with SF's model factory,
so plain SF checkpoints work), its latest `checkpoint_p<policy>/checkpoint_*.pth` gives the weights and its own
observation-normaliser statistics. Teachers run in eval mode without gradients; they are never child modules of the
student (not in its state_dict, optimizer or checkpoints).

`--teacher=DIR` is one teacher for every task. `--teachers=MAP.yaml` maps suite task names to teachers:

    DoorKey-5x5: doorkey_teacher                 # experiment dir (or name under --train_dir)
    DoorKey-8x8: {path: doorkey_teacher, rho: 0.5}
    MemoryS7:    {path: /abs/path/memory_teacher, policy: 0}

One teacher may serve several tasks (teachers are identified by their resolved directory); tasks absent from the map
get no kickstart term. ρ is per teacher (default 1).
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs
from sample_factory.model.actor_critic import create_actor_critic
from sample_factory.model.model_utils import get_rnn_size
from sample_factory.utils.attr_dict import AttrDict

from sf_kickstart.suites.registry import TASK_ID_KEY


class TeacherError(ValueError):
    """A teacher that cannot be used: missing, no checkpoint, corrupt, or incompatible spaces."""


@dataclass
class TeacherSpec:
    path: str  # resolved experiment directory
    rho: float = 1.0
    policy: int = 0
    tasks: List[str] = field(default_factory=list)  # task names it supervises; [] with a single --teacher = all

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.path))


def resolve_experiment_dir(path: str, train_dir: Optional[str]) -> str:
    candidates = [path]
    if train_dir and not os.path.isabs(path):
        candidates.append(os.path.join(train_dir, path))
    for c in candidates:
        if os.path.isdir(c):
            return os.path.abspath(c)
    raise TeacherError(
        f"Teacher {path!r} does not exist (looked in: {', '.join(os.path.abspath(c) for c in candidates)}). "
        f"A teacher is a Sample Factory experiment directory with config.json and checkpoint_p0/"
    )


def latest_checkpoint(exp_dir: str, policy: int = 0) -> str:
    ckpt_dir = os.path.join(exp_dir, f"checkpoint_p{policy}")
    checkpoints = sorted(glob.glob(os.path.join(ckpt_dir, "checkpoint_*.pth")))
    if not checkpoints:
        raise TeacherError(f"Teacher {exp_dir!r} has no checkpoint: no {ckpt_dir}/checkpoint_*.pth")
    return checkpoints[-1]


def load_checkpoint_file(path: str, device="cpu") -> Dict:
    """torch.load with weights_only=False (SF checkpoints hold numpy scalars; torch>=2.6 changed the default)."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is unusable
        raise TeacherError(f"Checkpoint {path!r} could not be loaded ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise TeacherError(f"Checkpoint {path!r} is not a Sample Factory checkpoint (no 'model' state dict)")
    return ckpt


def load_teacher_cfg(exp_dir: str) -> AttrDict:
    cfg_path = os.path.join(exp_dir, "config.json")
    if not os.path.isfile(cfg_path):
        raise TeacherError(f"Teacher {exp_dir!r} has no config.json: not a Sample Factory experiment directory")
    try:
        with open(cfg_path) as f:
            return AttrDict(json.load(f))
    except json.JSONDecodeError as exc:
        raise TeacherError(f"Teacher config {cfg_path!r} is not valid JSON: {exc}") from exc


def _describe_space(space) -> str:
    if isinstance(space, spaces.Dict):
        return "{" + ", ".join(f"{k}: {_describe_space(v)}" for k, v in space.spaces.items()) + "}"
    if isinstance(space, spaces.Box):
        return f"Box{tuple(space.shape)}/{space.dtype}"
    return str(space)


def spaces_match(a, b) -> bool:
    if isinstance(a, spaces.Dict) and isinstance(b, spaces.Dict):
        return set(a.spaces) == set(b.spaces) and all(spaces_match(a[k], b[k]) for k in a.spaces)
    if isinstance(a, spaces.Box) and isinstance(b, spaces.Box):
        return a.shape == b.shape and a.dtype == b.dtype
    return a == b


def check_spaces(name: str, teacher_obs, teacher_act, student_obs, student_act) -> None:
    if not spaces_match(teacher_obs, student_obs):
        raise TeacherError(
            f"Teacher {name!r} observation space does not match the student's:\n"
            f"  teacher: {_describe_space(teacher_obs)}\n  student: {_describe_space(student_obs)}"
        )
    if not spaces_match(teacher_act, student_act):
        raise TeacherError(
            f"Teacher {name!r} action space does not match the student's: teacher {teacher_act}, student {student_act}"
        )


class FrozenTeacher:
    """One teacher's model in eval mode, with its own normaliser and recurrent-state size."""

    def __init__(self, spec: TeacherSpec, obs_space, action_space, device="cpu"):
        self.spec = spec
        self.cfg = load_teacher_cfg(spec.path)
        self.checkpoint_path = latest_checkpoint(spec.path, spec.policy)
        ckpt = load_checkpoint_file(self.checkpoint_path, "cpu")
        try:
            model = create_actor_critic(self.cfg, obs_space, action_space)
        except Exception as exc:  # noqa: BLE001
            raise TeacherError(
                f"Could not build teacher {spec.name!r} from its config.json ({type(exc).__name__}: {exc})"
            ) from exc
        try:
            model.load_state_dict(ckpt["model"], strict=True)
        except RuntimeError as exc:
            raise TeacherError(
                f"Teacher {spec.name!r} checkpoint {self.checkpoint_path!r} does not fit the architecture in its "
                f"config.json for the student's observation/action spaces:\n{exc}"
            ) from exc
        model.model_to_device(torch.device(device))
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self.rnn_size = get_rnn_size(self.cfg)
        self.env_steps = int(ckpt.get("env_steps", 0))

    @torch.no_grad()
    def forward(self, obs: Dict[str, Tensor], rnn_states: Tensor) -> Tuple[Tensor, Tensor]:
        normalized = prepare_and_normalize_obs(self.model, dict(obs))  # fresh dict: SF rewrites keys in place
        out = self.model(normalized, rnn_states)
        return out["action_logits"], out["new_rnn_states"]


def parse_teacher_map(path: str, train_dir: Optional[str], task_names: Sequence[str]) -> List[TeacherSpec]:
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
            raise TeacherError(f"--teachers map entry for {task!r} must be a path or {{path: ..., rho: ...}}")
        rho = float(entry.get("rho", 1.0))
        if not np.isfinite(rho) or rho < 0:
            raise TeacherError(f"--teachers map: rho for {task!r} must be >= 0, got {rho}")
        resolved = resolve_experiment_dir(str(entry["path"]), train_dir)
        key = (resolved, int(entry.get("policy", 0)))
        if key in by_path:
            spec = by_path[key]
            if "rho" in entry and spec.rho != rho:
                raise TeacherError(f"--teachers map gives teacher {spec.name!r} two different rho values")
            spec.tasks.append(task)
        else:
            by_path[key] = TeacherSpec(path=resolved, rho=rho, policy=key[1], tasks=[task])
    return list(by_path.values())


def teacher_specs_from_cfg(cfg, task_names: Sequence[str]) -> List[TeacherSpec]:
    teacher = getattr(cfg, "teacher", None)
    teachers = getattr(cfg, "teachers", None)
    if teacher and teachers:
        raise TeacherError("Give either --teacher (one teacher for all tasks) or --teachers (a map), not both")
    if teachers:
        return parse_teacher_map(teachers, cfg.train_dir, task_names)
    if teacher:
        return [TeacherSpec(path=resolve_experiment_dir(teacher, cfg.train_dir), tasks=list(task_names))]
    return []


class TeacherBank:
    """All teachers of a run, routed by task id. Teacher recurrent states share one block of width max(rnn sizes):
    an env is on one task (hence one teacher) for a whole episode, and the block is zeroed at episode ends."""

    def __init__(self, specs: Sequence[TeacherSpec], task_names: Sequence[str], obs_space, action_space, device="cpu"):
        self.specs = list(specs)
        self.task_names = list(task_names)
        self.teachers = [FrozenTeacher(s, obs_space, action_space, device) for s in self.specs]
        self.device = torch.device(device)
        task_to_teacher = np.full(len(self.task_names), -1, dtype=np.int64)
        for i, spec in enumerate(self.specs):
            for task in spec.tasks:
                task_to_teacher[self.task_names.index(task)] = i
        self.task_to_teacher_np = task_to_teacher
        self.task_to_teacher = torch.from_numpy(task_to_teacher).to(self.device)
        self.rnn_size = max((t.rnn_size for t in self.teachers), default=0)
        self.has_task_id = isinstance(obs_space, spaces.Dict) and TASK_ID_KEY in obs_space.spaces
        # fast path: one teacher on every task
        self.single = len(self.teachers) == 1 and bool((task_to_teacher == 0).all())

    def __len__(self):
        return len(self.teachers)

    def task_ids(self, obs: Dict[str, Tensor], n: int) -> Tensor:
        if self.has_task_id:
            return torch.as_tensor(obs[TASK_ID_KEY]).to(self.device).argmax(dim=-1)
        return torch.zeros(n, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def forward(self, obs: Dict[str, Tensor], rnn_states: Tensor, num_logits: int):
        """obs: raw (unnormalised) observations; rnn_states: [N, self.rnn_size].
        Returns teacher logits [N, num_logits] (0 where no teacher), teacher index [N] (-1 = none), new states."""
        n = rnn_states.shape[0]
        if self.single:
            t = self.teachers[0]
            logits, new_h = t.forward(obs, rnn_states[:, : t.rnn_size])
            if t.rnn_size < self.rnn_size:
                new_h = torch.nn.functional.pad(new_h, (0, self.rnn_size - t.rnn_size))
            return logits.float(), torch.zeros(n, device=logits.device), new_h
        tidx = self.task_to_teacher[self.task_ids(obs, n)]
        logits = torch.zeros(n, num_logits, device=rnn_states.device)
        new_rnn = torch.zeros_like(rnn_states)
        for i, t in enumerate(self.teachers):
            rows = (tidx == i).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                continue
            rows_dev = rows.to(rnn_states.device)
            sub_obs = {k: torch.as_tensor(v)[rows.to(torch.as_tensor(v).device)] for k, v in obs.items()}
            sub_logits, sub_h = t.forward(sub_obs, rnn_states[rows_dev, : t.rnn_size])
            logits[rows_dev] = sub_logits.float()
            new_rnn[rows_dev, : t.rnn_size] = sub_h
        return logits, tidx.float().to(rnn_states.device), new_rnn
