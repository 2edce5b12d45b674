"""A Sample Factory experiment directory as a policy to play: what `evaluate`, `enjoy` and the periodic evaluation
load. Everything goes through the project's one experiment layer (`sf_kickstart.experiments`: config, checkpoint
finder, checkpoint loader) and its one model builder (`teachers.FrozenTeacher`: config.json -> SF's model factory,
strict state dict), so every failure is one `AgentError` sentence: no config, no checkpoint, a file that does not
load, or a checkpoint that does not fit the env it is asked to play."""

from __future__ import annotations

import os
from typing import Optional

from sample_factory.utils.attr_dict import AttrDict

from sf_kickstart.experiments import CHECKPOINT_PREFIXES, ExperimentError, checkpoint_paths, read_config
from sf_kickstart.suites.registry import SuiteError, prepare_env
from sf_kickstart.teachers import FrozenTeacher, TeacherError, TeacherSpec


class AgentError(ValueError):
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
    try:
        cfg = read_config(exp_dir, required=True)
    except ExperimentError as exc:
        raise error(f"{what}: {exc}") from exc
    if "env" not in cfg:
        raise error(f"{what}: config.json has no 'env'")
    try:
        prepare_env(cfg["env"])
    except SuiteError as exc:
        raise error(f"{what} was trained on {cfg['env']!r}, which cannot be created here: {exc}") from exc
    return AttrDict(cfg)


def load_agent(
    exp_dir: str, obs_space, action_space, policy: int = 0, kind: str = "latest", checkpoint: Optional[str] = None,
    device: str = "cpu",
) -> FrozenTeacher:
    """The experiment's model (eval mode, no gradients) from one checkpoint, built for `obs_space`/`action_space`.
    `.model` is SF's actor-critic, `.cfg` its config, `.checkpoint_path`, `.env_steps`, `.rnn_size`."""
    checkpoint = checkpoint or find_checkpoint(exp_dir, policy, kind)
    device = "cuda" if device == "gpu" else device  # SF's name for it
    spec = TeacherSpec(path=os.path.abspath(exp_dir), policy=policy, checkpoint=checkpoint)
    try:
        return FrozenTeacher(spec, obs_space, action_space, device, fast=False)
    except (TeacherError, ExperimentError) as exc:
        detail = " ".join(str(exc).replace(f"Teacher {spec.name!r} ", "", 1).split())  # one line
        detail = detail if len(detail) < 600 else detail[:600] + " ..."
        raise AgentError(f"Experiment {spec.name!r} cannot be played on this env: {detail}") from exc
