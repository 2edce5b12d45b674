"""A Sample Factory experiment directory as a policy to play: what `evaluate`, `enjoy` and the periodic evaluation
load. Everything goes through the project's one experiment layer (`sf_kickstart.experiments`: config, checkpoint
finder), its one checkpoint loader (`sf_kickstart.checkpoints`) and its one model builder (`teachers.FrozenTeacher`:
config.json -> SF's model factory, strict state dict), so every failure is one sentence, raised as what it is: no
config, no checkpoint (`AgentError`), a file that does not load (the loader's `CheckpointLoadError`), or a checkpoint
that does not fit the env it is asked to play (`AgentError`, through FrozenTeacher's `fail`)."""

from __future__ import annotations

import os
from typing import Dict, Optional

from sample_factory.utils.attr_dict import AttrDict

from sf_kickstart.checkpoints import load_verified
from sf_kickstart.errors import Fail, UserError, prefixed
from sf_kickstart.experiments import CHECKPOINT_PREFIXES, checkpoint_paths, read_config
from sf_kickstart.sf.setup import pin_teacher
from sf_kickstart.suites.registry import SuiteError, prepare_env
from sf_kickstart.teachers import FrozenTeacher, TeacherFiles, TeacherSpec


class AgentError(UserError):
    """An experiment that cannot be played: missing, no checkpoint, corrupt, or not for this env."""


def find_checkpoint(exp_dir: str, policy: int = 0, kind: str = "latest") -> str:
    """The newest `checkpoint_*.pth` (kind=latest) or `best_*.pth` (kind=best) of one policy."""
    if kind not in CHECKPOINT_PREFIXES:
        raise AgentError(f"--load_checkpoint_kind must be latest or best, got {kind!r}")
    found = checkpoint_paths(exp_dir, policy, kind)
    if not found:
        raise AgentError(
            f"Experiment {exp_dir!r} has no {kind} checkpoint: no {os.path.join(exp_dir, f'checkpoint_p{policy}')}/"
            f"{CHECKPOINT_PREFIXES[kind]}_*.pth (was it trained, and is --train_dir/--experiment right?)"
        )
    return found[-1]


def experiment_cfg(exp_dir: str, what: Optional[str] = None, error=AgentError) -> AttrDict:
    """The experiment's saved config.json, with its env registered with Sample Factory in this process.
    `what` names it in errors (default: "Experiment '<dir>'"), raised as `error`."""
    what = what or f"Experiment {exp_dir!r}"
    if not os.path.isdir(exp_dir):
        raise error(f"{what} does not exist (expected a Sample Factory experiment directory)")
    cfg = read_config(exp_dir, required=True, fail=prefixed(f"{what}:", error))
    if "env" not in cfg:
        raise error(f"{what}: config.json has no 'env'")
    try:
        prepare_env(cfg["env"])
    except SuiteError as exc:
        raise error(f"{what} was trained on {cfg['env']!r}, which cannot be created here: {exc}") from exc
    return AttrDict(cfg)


def load_agent(
    exp_dir: str, obs_space, action_space, policy: int = 0, kind: str = "latest", checkpoint: Optional[str] = None,
    device: str = "cpu", trust=None, teacher_of: Optional[AttrDict] = None, obs_map: Optional[Dict[str, str]] = None,
) -> FrozenTeacher:
    """The experiment's model (eval mode, no gradients) from one checkpoint, built for `obs_space`/`action_space`.
    `.model` is SF's actor-critic, `.cfg` its config, `.checkpoint_path`, `.sha256`, `.env_steps`, `.rnn_size`;
    `.view(obs)` is what the model reads of an env observation (its keys, `.obs_keys`, from `.input_keys`).
    `trust`: a --trust_checkpoint value; a checkpoint the safe loader refuses is its own CheckpointLoadError (its
    message names the file and what to do).
    `teacher_of`: the config of the experiment whose env it plays as that experiment's teacher (evaluate puts the
    teachers next to their student): it then reads what it reads in training, the keys of its own env (restricted by
    its own --student_obs_keys), each through `obs_map` (teacher key -> env key, e.g. {"obs": "state"}: a privileged
    teacher on a `_pomdp` env), checked as training checks them (`sf.setup.pin_teacher`: a TeacherError)."""
    checkpoint = checkpoint or find_checkpoint(exp_dir, policy, kind)
    device = "cuda" if device == "gpu" else device  # SF's name for it
    spec = TeacherSpec(path=os.path.abspath(exp_dir), policy=policy, checkpoint=checkpoint, trust=trust,
                       obs_map=dict(obs_map or {}))
    files = TeacherFiles(spec, experiment_cfg(exp_dir), checkpoint, *load_verified(checkpoint, "cpu", trust=trust))
    if teacher_of is not None:
        pin_teacher(teacher_of, files, obs_space, action_space)
    return FrozenTeacher(files, obs_space, action_space, device, fast=False, fail=unplayable(spec.name))


def unplayable(name: str) -> Fail:
    """How a model that cannot be built for the env it is asked to play is raised: one AgentError line."""

    def fail(message: str) -> AgentError:
        detail = " ".join(message.split())
        detail = detail if len(detail) < 600 else detail[:600] + " ..."
        return AgentError(f"Experiment {name!r} cannot be played on this env: {detail}")

    return fail
