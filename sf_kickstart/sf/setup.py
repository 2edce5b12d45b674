"""python -m sf_kickstart.train --env=ENV [Sample Factory flags] [kickstart flags]

Every Sample Factory flag works. Ours (see `add_kickstart_args`):
  --teacher=DIR                one frozen teacher (an SF experiment dir, or a name under --train_dir) for all tasks
  --teachers=MAP.yaml          one teacher per task (multi-teacher kickstarting)
  --kickstart_schedule=none|constant|linear|exponential|adaptive, --kickstart_lambda, --kickstart_end_frames,
  --kickstart_decay, --kickstart_decay_frames, --kickstart_floor
  --kickstart_distill_only     drop the RL policy loss: pure policy distillation (the paper's baseline)
  --preset=cfg/FILE.yaml       flag defaults from a preset file (the command line still wins)

Everything that can be wrong with the input is checked here, in the main process, before any worker starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import yaml

from sample_factory.algo.utils.action_distributions import calc_num_action_parameters
from sample_factory.algo.utils.env_info import extract_env_info
from sample_factory.algo.utils.make_env import make_env_func_batched
from sample_factory.algo.utils.misc import ExperimentStatus
from sample_factory.cfg.arguments import maybe_load_from_checkpoint, parse_full_cfg, parse_sf_args
from sample_factory.model.model_utils import get_rnn_size
from sample_factory.utils.attr_dict import AttrDict
from sample_factory.utils.utils import experiment_dir, log, str2bool

from sf_kickstart.agents.agent import experiment_cfg
from sf_kickstart.device import DeviceError, check_device
from sf_kickstart.envprobe import EnvCreationError, make_env_info, probe_env_info, probe_observations
from sf_kickstart.experiments import ExperimentError, checkpoint_paths, remove_partial_checkpoints
from sf_kickstart.sf.learner import FixedLearner
from sf_kickstart.kickstart.loss import UnsupportedActionSpace, logit_splits
from sf_kickstart.sf.runner import KickstartLayout, KickstartRunner
from sf_kickstart.paths import CFG_DIR
from sf_kickstart.evaluation_cache import read_task_scores
from sf_kickstart.kickstart.adaptive import EVAL_POLICY, teacher_score
from sf_kickstart.kickstart.schedules import ADAPTIVE, SCHEDULES, KickstartSchedule, ScheduleError
from sf_kickstart.suites.registry import Suite, SuiteError, prepare_env
from sf_kickstart.teachers import (
    TeacherBank,
    TeacherError,
    TeacherRouting,
    check_spaces,
    teacher_specs_from_cfg,
)

class EvalFlagError(ValueError):
    pass


def check_eval_args(cfg) -> None:
    if getattr(cfg, "eval_every_frames", 0) < 0:
        raise EvalFlagError(f"--eval_every_frames must be >= 0 (0: off), got {cfg.eval_every_frames}")
    if getattr(cfg, "eval_every_frames", 0) and cfg.eval_episodes < 1:
        raise EvalFlagError(f"--eval_episodes must be >= 1, got {cfg.eval_episodes}")


def add_eval_args(parser) -> None:
    g = parser.add_argument_group("periodic evaluation")
    g.add_argument("--eval_every_frames", default=0, type=float,
                   help="every N env frames, evaluate a frozen copy of the latest weights in a separate process (0: off)")
    g.add_argument("--eval_episodes", default=10, type=int, help="greedy episodes per task of each periodic evaluation")


USER_ERRORS = (
    SuiteError, TeacherError, ScheduleError, UnsupportedActionSpace, ExperimentError, EnvCreationError, DeviceError,
    EvalFlagError,
)


class PresetError(ValueError):
    pass


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_kickstart_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("kickstart")
    g.add_argument("--teacher", default=None, type=str, help="SF experiment dir of a frozen teacher (all tasks)")
    g.add_argument("--teachers", default=None, type=str, help="YAML map: suite task name -> teacher experiment dir")
    g.add_argument(
        "--kickstart_schedule",
        default="constant",
        type=str,
        help=f"λ schedule over env frames: {'|'.join(SCHEDULES)} (ignored without a teacher)",
    )
    g.add_argument("--kickstart_lambda", default=1.0, type=float, help="λ for constant; start value otherwise")
    g.add_argument("--kickstart_end_frames", default=0.0, type=float, help="linear: env frames where λ reaches 0")
    g.add_argument("--kickstart_decay", default=0.5, type=float, help="exponential: factor per decay_frames")
    g.add_argument("--kickstart_decay_frames", default=1e6, type=float, help="exponential: frames per decay step")
    g.add_argument("--kickstart_floor", default=0.0, type=float, help="exponential: λ never goes below this")
    g.add_argument(
        "--kickstart_distill_only",
        default=False,
        type=str2bool,
        help="drop the RL policy loss and learn the policy only from the teacher (pure policy distillation)",
    )
    g.add_argument(
        "--kickstart_debug_dump",
        default=0,
        type=int,
        help="save the kickstart inputs of the first K training batches under <experiment>/kickstart_debug/ "
        "(raw obs, teacher rnn states and logits, student logits, weights, loss) to verify the data flow",
    )
    g.add_argument(
        "--kickstart_pbt_zero_below",
        default=1e-3,
        type=float,
        help="PBT: an α or ρ_i perturbed below this becomes exactly 0 (the student is free of that teacher)",
    )
    g.add_argument(
        "--max_nonfinite_skips",
        default=10,
        type=_positive_int,
        help="a minibatch whose loss or gradient is NaN/inf is skipped (train/nonfinite_skipped); this many in a row "
        "stop the run with an error naming the last good checkpoint",
    )
    g.add_argument(
        "--kickstart_pbt_resample_prob",
        default=0.25,
        type=float,
        help="PBT explore: probability that α or ρ_i is resampled (uniform in [0, 2 × initial]) instead of ×1.2/×0.8",
    )
    g.add_argument(
        "--kickstart_pbt_explore_all",
        default=True,
        type=str2bool,
        help="PBT: member 0 explores too (the paper's PBT); False keeps SF's unmutated reference member 0",
    )
    g.add_argument("--preset", default=None, type=str, help="YAML file of flag defaults (cfg/*.yaml)")


def load_preset(path: str) -> dict:
    candidates = [path, os.path.join(CFG_DIR, path)]
    for c in candidates:
        if os.path.isfile(c):
            with open(c) as f:
                data = yaml.safe_load(f) or {}
            if not isinstance(data, dict):
                raise PresetError(f"Preset {c!r} must be a mapping of flag -> value")
            return data
    raise PresetError(f"Preset {path!r} not found (also looked in cfg/)")


def argv_value(argv: List[str], flag: str) -> Optional[str]:
    for i, a in enumerate(argv):
        if a.startswith(f"--{flag}="):
            return a.split("=", 1)[1]
        if a == f"--{flag}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def parse_args(argv: Optional[List[str]] = None, evaluation: bool = False) -> Tuple[AttrDict, Suite]:
    argv = list(sys.argv[1:] if argv is None else argv)

    preset = argv_value(argv, "preset")
    preset_values = load_preset(preset) if preset else {}
    if "env" in preset_values and argv_value(argv, "env") is None:
        argv = [f"--env={preset_values['env']}"] + argv

    parser, partial_cfg = parse_sf_args(argv, evaluation=evaluation)
    suite = prepare_env(partial_cfg.env)  # SuiteError for unknown suites/tasks or missing simulators
    suite.add_args(parser)
    suite.override_defaults(partial_cfg.env, parser)
    add_kickstart_args(parser)
    add_eval_args(parser)

    known = {a.dest for a in parser._actions}
    unknown_keys = [k for k in preset_values if k not in known]
    if unknown_keys:
        raise PresetError(f"Preset {preset!r} sets unknown flags: {unknown_keys}")
    if suite.has_suite_score:
        parser.set_defaults(pbt_target_objective="suite_score")  # PBT ranks on the capped mean normalised score
    parser.set_defaults(**{k: v for k, v in preset_values.items() if k != "env"})

    cfg = parse_full_cfg(parser, argv)
    return cfg, suite


def check_student_checkpoint(cfg) -> None:
    """A run that resumes must be able to read its own checkpoint: never silently start from random weights."""
    if cfg.restart_behavior != "resume":
        return
    for policy_id in range(cfg.num_policies):
        exp_dir = experiment_dir(cfg=cfg, mkdir=False)
        remove_partial_checkpoints(os.path.join(exp_dir, f"checkpoint_p{policy_id}"))  # never resume from a partial file
        checkpoints = checkpoint_paths(exp_dir, policy_id, cfg.load_checkpoint_kind)
        if checkpoints:
            FixedLearner.load_checkpoint(checkpoints, "cpu")


def resolve_teacher_scores(specs, has_task_scores: bool = True) -> List[float]:
    """Adaptive λ's G_T,i per teacher, in teacher order, from the `--teachers` map or each teacher's evaluation cache
    (ScheduleError when one is missing, or not > 0 outside a suite)."""
    return [
        teacher_score(spec, read_task_scores(spec.path, EVAL_POLICY, spec.policy), not has_task_scores) for spec in specs
    ]


def build_layout(cfg, suite: Suite, env_info=None) -> Optional[KickstartLayout]:
    """Validate schedule and teachers against the student's env; None when there is no teacher.
    `env_info` may be an EnvInfo or a callable producing it (called only when there is a teacher)."""
    KickstartSchedule.from_cfg(cfg)  # ScheduleError for impossible values, teacher or not

    task_names = suite.task_names(cfg.env)
    specs = teacher_specs_from_cfg(cfg, task_names)
    if cfg.kickstart_distill_only and not specs:
        raise ScheduleError("--kickstart_distill_only=True needs a teacher (--teacher or --teachers)")
    if not specs:
        return None
    if cfg.teachers and not any(spec.tasks for spec in specs):
        raise TeacherError(f"--teachers map names no task of {cfg.env}")

    if callable(env_info):
        env_info = env_info()
    env_info = env_info if env_info is not None else make_env_info(cfg)
    logit_splits(env_info.action_space)  # UnsupportedActionSpace for continuous control

    for spec in specs:
        tcfg = experiment_cfg(spec.path, what=f"Teacher {spec.name!r}", error=TeacherError)
        teacher_env_cfg = AttrDict({**cfg, **{k: v for k, v in tcfg.items() if k not in ("teacher", "teachers")}})
        teacher_info = make_env_info(teacher_env_cfg)
        check_spaces(spec.name, teacher_info.obs_space, teacher_info.action_space, env_info.obs_space, env_info.action_space)

    # loads every checkpoint into its architecture; the fast execution paths are built where teachers run
    bank = TeacherBank(specs, task_names, env_info.obs_space, env_info.action_space, "cpu", fast=False)
    probe = probe_observations(cfg)
    for teacher in bank.teachers:
        teacher.check_finite(probe)
    for spec, teacher in zip(specs, bank.teachers):
        log.info(
            f"Teacher {spec.name}: {teacher.checkpoint_path} (trained {teacher.env_steps} frames, rnn state "
            f"{teacher.rnn_size}, rho={spec.rho}) supervises {spec.tasks}"
        )
    teacher_scores = None
    if cfg.kickstart_schedule == ADAPTIVE:
        teacher_scores = resolve_teacher_scores(specs, has_task_scores=suite.has_suite_score)
        log.info(f"Adaptive λ: teacher scores G_T = {dict(zip([s.name for s in specs], teacher_scores))}")
    return KickstartLayout(
        student_rnn=get_rnn_size(cfg),
        teacher_rnn=bank.rnn_size,
        num_logits=calc_num_action_parameters(env_info.action_space),
        specs=specs,
        routing=TeacherRouting.of(specs, task_names),
        teacher_scores=teacher_scores,
    )


def prepare(argv: Optional[List[str]] = None):
    cfg, suite = parse_args(argv)
    check_device(cfg.device)  # --device=gpu without CUDA: an error here, not an IndexError in SF's sampler
    check_eval_args(cfg)
    if cfg.restart_behavior == "resume":
        cfg = maybe_load_from_checkpoint(cfg)
    if not isinstance(cfg, AttrDict):
        cfg = AttrDict(vars(cfg))  # SF #263: PBT (and restarts other than resume) need a subscriptable cfg
    check_student_checkpoint(cfg)
    probed = []

    def env_info():
        if not probed:
            probed.append(probe_env_info(cfg))
        return probed[0]

    layout = build_layout(cfg, suite, env_info)  # schedule and teacher paths are checked before any env is made
    env_info()  # an env that cannot be created in a fresh process is an error here, not a hang later
    return cfg, layout, suite
