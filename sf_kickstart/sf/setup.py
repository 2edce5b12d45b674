"""python -m sf_kickstart.train --env=ENV [Sample Factory flags] [kickstart flags]

Every Sample Factory flag works. Ours (see `add_kickstart_args`):
  --teacher=DIR                one frozen teacher (an SF experiment dir, or a name under --train_dir) for all tasks
  --teachers=MAP.yaml          one teacher per task (multi-teacher kickstarting)
  --kickstart_schedule=none|constant|linear|exponential|adaptive|reengage, --kickstart_lambda, --kickstart_end_frames,
  --kickstart_decay, --kickstart_decay_frames, --kickstart_floor
                               (reengage: per task λ_k = λ·ρ·clip(1 − G_S,k/G_T,k, 0, 1) from the student's current
                               score, so a task the student falls behind on gets its teacher back)
  --kickstart_distill_only     drop the RL policy loss: pure policy distillation (the paper's baseline)
  --kickstart_loss=cross_entropy|reverse_kl|mse_mean
                               the divergence per action head (Discrete, Box, Tuple): the paper's H(π_T, π_S), or
                               KL(π_S ‖ π_T), or the MSE on continuous heads' means (sf_kickstart/kickstart/loss.py)
  --kickstart_value_coeff=C    value distillation: + C·λ·(V_S − V_T)² on the value loss (0: off)
  --kickstart_teacher_smoothing=E
                               categorical heads imitate (1 − E)·π_T + E·uniform: no action the teachers never take
                               is unlearnt (issue 20)
  --kickstart_untaught_entropy=C
                               reengage: an entropy bonus C·(1 − G_S,k/100) on the tasks no teacher can teach (no
                               teacher, or one no better than random there; sf_kickstart/kickstart/untaught.py)
  --student_obs_keys=obs       the student's model reads only these Dict observation keys (privileged teachers)
  --teacher_obs_map=obs:state  the --teacher reads its key obs from the student env's key state (a --teachers
                               entry: obs_map: {obs: state})
  --preset=cfg/FILE.yaml       flag defaults from a preset file (the command line still wins)

Everything that can be wrong with the input is checked here, in the main process, before any worker starts.
"""

# sf.setup (this docstring is also `python -m sf_kickstart.train --help`): the flags, their parsing and validation,
# `build_layout` (the run as validated: schedule, action heads and divergence, routing, teachers read once and pinned)
# and `prepare`.
# May import: Sample Factory's cfg code, the ground floor, `kickstart`, `suites`, `teachers`, `sf.storage`,
# `sf.distillation`, `sf.fixes`.

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Callable, Dict, List, Optional, Tuple

import gymnasium as gym
import torch
import yaml

from sample_factory.cfg.arguments import maybe_load_from_checkpoint, parse_full_cfg, parse_sf_args
from sample_factory.model.model_utils import get_rnn_size
from sample_factory.utils.attr_dict import AttrDict
from sample_factory.utils.utils import experiment_dir, log, str2bool

from sf_kickstart.device import check_device
from sf_kickstart import checkpoints, provenance
from sf_kickstart.envprobe import make_env_info, probe_env_info, probe_observations
from sf_kickstart.experiments import checkpoint_paths, read_config, remove_partial_checkpoints
from sf_kickstart.sf.fixes.learner import FixedLearner
from sf_kickstart.sf.fixes.lr_schedule import add_lr_schedule_args, check_lr_schedule, partial_parse_argv
from sf_kickstart.sf.fixes.nonfinite import first_nonfinite
from sf_kickstart.kickstart.loss import (
    CROSS_ENTROPY, KICKSTART_LOSSES, check_loss_fits, check_smoothing, check_value_coeff,
)
from sf_kickstart.sf.distillation import action_heads, describe_actions, num_action_parameters
from sf_kickstart.sf.storage import KickstartLayout
from sf_kickstart.paths import CFG_DIR
from sf_kickstart.errors import ExperimentError, UserError, prefixed
from sf_kickstart.evaluation_cache import read_task_scores
from sf_kickstart.kickstart.adaptive import EVAL_POLICY, teacher_score
from sf_kickstart.kickstart.reengage import task_teacher_scores
from sf_kickstart.kickstart.schedules import ADAPTIVE, REENGAGE, SCHEDULES, KickstartSchedule, ScheduleError
from sf_kickstart.suites.registry import Suite, SuiteError, prepare_env
from sf_kickstart.teachers import (
    FrozenTeacher,
    TeacherBank,
    TeacherError,
    TeacherFiles,
    TeacherRouting,
    TeacherSpec,
    check_action_space,
    read_teacher,
    student_env_info,
    teacher_keys,
    teacher_specs_from_cfg,
)
from sf_kickstart.teachers.inputs import add_args as add_obs_key_args

class EvalFlagError(UserError):
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


class PresetError(UserError):
    pass


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_loss_args(g) -> None:
    """What the kickstart loss is made of: with or without the RL policy loss, the policy divergence per action head,
    value distillation."""
    g.add_argument(
        "--kickstart_distill_only",
        default=False,
        type=str2bool,
        help="drop the RL policy loss and learn the policy only from the teacher (pure policy distillation)",
    )
    g.add_argument(
        "--kickstart_loss",
        default=CROSS_ENTROPY,
        choices=KICKSTART_LOSSES,
        help="the divergence of the student's policy from the teacher's, per action head, summed over heads: "
        "cross_entropy H(π_T, π_S) (the paper's; closed form for Gaussian heads), reverse_kl KL(π_S ‖ π_T), "
        "mse_mean (μ_S − μ_T)² on the means of continuous heads (categorical heads keep cross_entropy; a space "
        "without a Box head is refused)",
    )
    g.add_argument(
        "--kickstart_init_stddev",
        default=False,
        type=str2bool,
        help="Box actions with Sample Factory's learned std (--adaptive_stddev=False): a new run's student starts its "
        "log-std at its teacher's (the mean over teachers), not at log(--initial_stddev); resume keeps the "
        "checkpoint's, no teacher: ignored. Adam moves that one parameter by about the learning rate per step, so "
        "from SF's initial std 1 a student follows a teacher's std (e.g. 0.18) only slowly and its sampled returns "
        "lag its mean's",
    )
    g.add_argument(
        "--kickstart_value_coeff",
        default=0.0,
        type=float,
        help="value distillation: adds coeff·λ·(V_S − V_T)² (the teacher's value on the same step, in the student's "
        "critic units), averaged over valid steps, to the value loss; 0 = off",
    )
    g.add_argument(
        "--kickstart_teacher_smoothing",
        default=0.0,
        type=float,
        help="categorical heads: the student imitates (1 − ε)·π_T + ε·uniform instead of π_T (label smoothing of the "
        "teacher), so an action the teacher never takes on its tasks keeps probability >= ε/n in the student there "
        "and elsewhere: a task no teacher can teach may need it (issue 20: MiniGrid's drop on KeyCorridor). 0 = off",
    )
    g.add_argument(
        "--kickstart_untaught_entropy",
        default=0.0,
        type=float,
        help="--kickstart_schedule=reengage: on the steps of each task no teacher can teach (none in the map, or one "
        "no better than a random agent there, G_T,k <= 0), an entropy bonus e_k = C·(1 − clip(G_S,k/100, 0, 1)) "
        "that fades as the student solves the task: imitating near-deterministic teachers elsewhere makes the shared "
        "policy near-deterministic there too (issue 20). 0 = off",
    )


def add_kickstart_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("kickstart")
    g.add_argument("--teacher", default=None, type=str, help="SF experiment dir of a frozen teacher (all tasks)")
    g.add_argument("--teachers", default=None, type=str, help="YAML map: suite task name -> teacher experiment dir")
    g.add_argument(
        "--kickstart_schedule",
        default="constant",
        type=str,
        help=f"λ schedule over env frames: {'|'.join(SCHEDULES)} (ignored without a teacher). adaptive: per teacher "
        "λ_i = λ·ρ_i·f_i, f_i the running min of clip(1 − G_S,i/G_T,i, 0, 1) (one-way); reengage: per task "
        "λ_k = λ·ρ_i·clip(1 − G_S,k/G_T,k, 0, 1) from the student's current running score on task k, so a mastered "
        "task gets λ 0 and a task the student falls behind on gets its teacher back (kickstart/reengage.py). Both need "
        "the teacher's score G_T: the --teachers map's score entries or its evaluation cache",
    )
    g.add_argument("--kickstart_lambda", default=1.0, type=float, help="λ for constant; start value otherwise")
    g.add_argument("--kickstart_end_frames", default=0.0, type=float, help="linear: env frames where λ reaches 0")
    g.add_argument("--kickstart_decay", default=0.5, type=float, help="exponential: factor per decay_frames")
    g.add_argument("--kickstart_decay_frames", default=1e6, type=float, help="exponential: frames per decay step")
    g.add_argument("--kickstart_floor", default=0.0, type=float, help="exponential: λ never goes below this")
    add_loss_args(g)
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
    checkpoints.add_trust_arg(g)
    provenance.add_args(g)


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


HELP_FLAGS = ("-h", "--help")
TRAIN_PROG = "python -m sf_kickstart.train"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """A command's description as written (its module docstring), every flag with its default (SF's formatter)."""

    def _get_help_string(self, action):
        text = action.help or ""
        return text if "default" in text else super()._get_help_string(action)  # a help that says its default


def wants_help(argv: List[str]) -> bool:
    return any(a in HELP_FLAGS for a in argv)


def print_help(parser: argparse.ArgumentParser, prog: str, doc: Optional[str], env_known: bool) -> None:
    """Every flag the command takes (SF's, the env's when --env is known, ours), then exit 0."""
    parser.prog, parser.description, parser.formatter_class = prog, doc, HelpFormatter
    if not env_known:
        parser.epilog = "Flags of the env itself (its suite's, its family's) are listed too with --env=ENV --help."
    parser.print_help()
    raise SystemExit(0)


def parse_args(
    argv: Optional[List[str]] = None,
    evaluation: bool = False,
    extra_args: Optional[Callable[[argparse.ArgumentParser], None]] = None,
    prog: str = TRAIN_PROG,
    doc: Optional[str] = __doc__,
) -> Tuple[AttrDict, Suite]:
    """SF's flags, the env's (`suite.add_args`), ours and `extra_args`' (a command's own flags, for its --help).
    `--help` lists them all under `prog` and `doc` and exits 0, with or without --env (SF's own exits 2 without)."""
    argv = list(sys.argv[1:] if argv is None else argv)

    preset = argv_value(argv, "preset")
    preset_values = load_preset(preset) if preset else {}
    if "env" in preset_values and argv_value(argv, "env") is None:
        argv = [f"--env={preset_values['env']}"] + argv

    help_only = wants_help(argv) and argv_value(argv, "env") is None  # SF's --env is required: no env flags then
    partial_argv = partial_parse_argv(argv + ["--env=?"] if help_only else argv)
    parser, partial_cfg = parse_sf_args(partial_argv, evaluation=evaluation)
    add_lr_schedule_args(parser)
    suite = None if help_only else prepare_env(partial_cfg.env)  # SuiteError for unknown suites/tasks or simulators
    if suite is not None:
        suite.add_args(parser)
        suite.override_defaults(partial_cfg.env, parser)
    add_kickstart_args(parser)
    add_eval_args(parser)
    add_obs_key_args(parser)  # --student_obs_keys, --teacher_obs_map (teachers.inputs)
    if extra_args is not None:
        extra_args(parser)

    known = {a.dest for a in parser._actions}
    unknown_keys = [k for k in preset_values if k not in known]
    if unknown_keys:
        raise PresetError(f"Preset {preset!r} sets unknown flags: {unknown_keys}")
    if suite is not None and suite.has_suite_score:
        parser.set_defaults(pbt_target_objective="suite_score")  # PBT ranks on the capped mean normalised score
    parser.set_defaults(**{k: v for k, v in preset_values.items() if k != "env"})
    if wants_help(argv):
        print_help(parser, prog, doc, env_known=suite is not None)

    cfg = parse_full_cfg(parser, argv)
    check_lr_schedule(cfg)
    return cfg, suite


PER_INVOCATION = ("trust_checkpoint", "kickstart_allow_teacher_change")  # never inherited from config.json


def resume_cfg(cfg) -> AttrDict:
    """The run's saved config.json (ExperimentError when it is not a JSON object) merged with this command line
    (SF's maybe_load_from_checkpoint); PER_INVOCATION flags are this command line's, never the saved run's."""
    fail = prefixed("Cannot resume:", ExperimentError, " (fix or remove it, or start a new --experiment)")
    read_config(experiment_dir(cfg=cfg, mkdir=False), fail=fail)
    given = {k: getattr(cfg, k) for k in PER_INVOCATION}
    cfg = maybe_load_from_checkpoint(cfg)
    cfg.update(given)
    return cfg


def check_student_checkpoint(cfg) -> None:
    """A run that resumes must be able to read its own checkpoint: never silently start from random weights."""
    if cfg.restart_behavior != "resume":
        return
    for policy_id in range(cfg.num_policies):
        exp_dir = experiment_dir(cfg=cfg, mkdir=False)
        remove_partial_checkpoints(os.path.join(exp_dir, f"checkpoint_p{policy_id}"))  # never resume from a partial file
        checkpoints = checkpoint_paths(exp_dir, policy_id, cfg.load_checkpoint_kind)
        if checkpoints:
            FixedLearner.load_checkpoint(checkpoints, "cpu", trust=cfg.trust_checkpoint)


def teacher_cache(spec, train_dir: Optional[str]):
    """A teacher's evaluation cache {task: score} (None: none), where the score-driven schedules read G_T."""
    return read_task_scores(spec.path, EVAL_POLICY, spec.policy, train_dir)


def resolve_teacher_scores(specs, has_task_scores: bool = True, train_dir: Optional[str] = None) -> List[float]:
    """Adaptive λ's G_T,i per teacher, in teacher order, from the `--teachers` map or each teacher's evaluation cache
    (ScheduleError when one is missing, or not > 0 outside a suite)."""
    return [teacher_score(spec, teacher_cache(spec, train_dir), not has_task_scores) for spec in specs]


def resolve_task_teacher_scores(
    specs, task_names, has_task_scores: bool = True, train_dir: Optional[str] = None
) -> List[Optional[float]]:
    """Re-engaging λ's G_T,k per task of `task_names` (None: a task without a teacher), each from the `--teachers`
    map's score for the task or its teacher's evaluation cache (ScheduleError naming the tasks without one)."""
    per_task: Dict[str, float] = {}
    for spec in specs:
        per_task.update(task_teacher_scores(spec, teacher_cache(spec, train_dir), not has_task_scores))
    return [per_task.get(task) for task in task_names]


def teacher_env_info(cfg, files: TeacherFiles):
    """Spaces of the env the teacher was trained on (its config.json's env and flags over this run's)."""
    what, env = f"Teacher {files.spec.name!r}", files.cfg.get("env")
    if env is None:
        raise TeacherError(f"{what}: config.json has no 'env'")
    try:
        prepare_env(env)
    except SuiteError as exc:
        raise TeacherError(f"{what} was trained on {env!r}, which cannot be created here: {exc}") from exc
    return make_env_info(AttrDict({**cfg, **{k: v for k, v in files.cfg.items() if k not in ("teacher", "teachers")}}))


def pin_teacher(cfg, files: TeacherFiles, obs_space, action_space) -> TeacherFiles:
    """A teacher, as read, checked against the env of `cfg` (the student's spaces `obs_space`, `action_space`): the
    keys it reads (its own env's, restricted by its config's --student_obs_keys), each present in the student env
    with its shape through its obs map, and its action space. Its spec is then pinned to those keys and to the
    checkpoint it was read from (file and sha256). TeacherError naming both sides when it does not fit."""
    spec = files.spec
    info = teacher_env_info(cfg, files)
    spec.obs_keys = teacher_keys(spec.name, info.obs_space, files.cfg, spec.obs_map, obs_space, cfg.env)
    check_action_space(spec.name, info.action_space, action_space)
    spec.checkpoint, spec.sha256 = files.checkpoint_path, files.sha256
    return files


def read_teachers(cfg, specs: List[TeacherSpec], env_info) -> List[TeacherFiles]:
    """Each teacher's config.json and checkpoint, read once, for an env with the student's spaces, and pinned
    (`pin_teacher`): the inference workers load exactly these bytes and read exactly these keys."""
    return [pin_teacher(cfg, read_teacher(spec), env_info.obs_space, env_info.action_space) for spec in specs]


def check_teacher_finite(teacher: FrozenTeacher, obs: Dict[str, torch.Tensor]) -> None:
    """TeacherError when the teacher's logits (and, with value distillation, its value estimates) on `obs` (raw
    observations sampled from the student's env, zero recurrent state) are not all finite, naming the first
    non-finite parameter or buffer (e.g. a normaliser's running variance) if there is one. A NaN teacher would
    otherwise make the kickstart loss, then the student's weights and checkpoints, NaN from the first batch."""
    n = len(next(iter(obs.values())))
    logits, _ = teacher.forward(obs, torch.zeros(n, teacher.rnn_size))
    if teacher.values:  # the last column: the critic's raw output, then as a return estimate
        logits = torch.cat([logits, teacher.values_in_return_units(logits[:, -1])[:, None]], dim=1)
    if torch.isfinite(logits).all():
        return
    bad = first_nonfinite(dict([*teacher.model.named_parameters(), *teacher.model.named_buffers()]))
    cause = f"its first non-finite parameter tensor is {bad!r}" if bad else "all its parameters are finite"
    what = "logits or value estimates" if teacher.values else "logits"
    raise TeacherError(
        f"Teacher {teacher.spec.name!r} ({teacher.checkpoint_path}) gives non-finite {what} on {n} observations "
        f"sampled from the student's env; {cause}"
    )


def score_kind(suite: Suite) -> str:
    """What a teacher's and the student's scores G are in this suite's runs, as the logs say it."""
    return "suite-score scale: min(100, normalised score) per task" if suite.has_suite_score else "mean return"


def score_targets(cfg, suite: Suite, specs, task_names) -> Dict:
    """The teachers' scores G_T a score-driven schedule needs, as `KickstartLayout` fields: adaptive λ's per teacher
    (`resolve_teacher_scores`), re-engaging λ's per task (`resolve_task_teacher_scores`); {} for the other schedules."""
    if cfg.kickstart_schedule == ADAPTIVE:
        scores = resolve_teacher_scores(specs, has_task_scores=suite.has_suite_score, train_dir=cfg.train_dir)
        log.info(f"Adaptive λ: teacher scores G_T = {dict(zip([s.name for s in specs], scores))} ({score_kind(suite)})")
        return dict(teacher_scores=scores)
    if cfg.kickstart_schedule == REENGAGE:
        scores = resolve_task_teacher_scores(specs, task_names, suite.has_suite_score, cfg.train_dir)
        log.info(f"Re-engaging λ: teacher scores per task G_T,k = {dict(zip(task_names, scores))} ({score_kind(suite)})")
        return dict(task_teacher_scores=scores)
    return {}


def check_untaught_entropy(cfg) -> None:
    """--kickstart_untaught_entropy: a finite number >= 0; > 0 only with re-engaging λ (its per-task scores) and a
    teacher (ScheduleError otherwise)."""
    c = cfg.kickstart_untaught_entropy
    if not math.isfinite(c) or c < 0:
        raise ScheduleError(f"--kickstart_untaught_entropy must be a finite number >= 0 (0: off), got {c}")
    if c > 0 and cfg.kickstart_schedule != REENGAGE:
        raise ScheduleError(
            f"--kickstart_untaught_entropy={c} needs --kickstart_schedule=reengage (it reads the student's per-task "
            f"scores and the teachers' G_T,k), not {cfg.kickstart_schedule}"
        )
    if c > 0 and not (cfg.teacher or cfg.teachers):
        raise ScheduleError(f"--kickstart_untaught_entropy={c} needs a teacher (--teacher or --teachers)")


def teacher_log_std(cfg, action_space, teachers) -> Optional[List[float]]:
    """--kickstart_init_stddev: the log-std the student starts from, the mean over teachers of each one's learned
    log-std parameter (SF's `learned_stddev` of --adaptive_stddev=False; same width: the action spaces were checked
    equal); None without the flag. UserError when the student's or a teacher's std is not such a parameter."""
    if not cfg.kickstart_init_stddev:
        return None
    if not isinstance(action_space, gym.spaces.Box) or cfg.adaptive_stddev:
        raise UserError(
            f"--kickstart_init_stddev needs a Box action space and --adaptive_stddev=False (the student's std is then "
            f"one learned parameter); this student has {describe_actions(action_space)}, "
            f"--adaptive_stddev={cfg.adaptive_stddev}"
        )
    stds = []
    for teacher in teachers:
        log_std = getattr(teacher.model.action_parameterization, "learned_stddev", None)
        if log_std is None:
            raise TeacherError(
                f"--kickstart_init_stddev: teacher {teacher.spec.name!r} has a state-dependent std (trained with "
                f"--adaptive_stddev=True), no learned std to start the student from"
            )
        stds.append(log_std.detach().float().cpu())
    return torch.stack(stds).mean(0).tolist()


def build_layout(cfg, suite: Suite, env_info=None) -> Optional[KickstartLayout]:
    """Validate schedule and teachers against the student's env; None when there is no teacher. What was validated
    (the schedule, the action heads and divergence, the routing, the pinned teachers) is the layout, used as it is
    downstream.
    `env_info` may be an EnvInfo or a callable producing it (called only when there is a teacher)."""
    schedule = KickstartSchedule.from_cfg(cfg)  # ScheduleError for impossible values, teacher or not
    check_value_coeff(cfg.kickstart_value_coeff)
    check_smoothing(cfg.kickstart_teacher_smoothing)
    check_untaught_entropy(cfg)
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
    heads = action_heads(env_info.action_space)  # UnsupportedActionSpace for e.g. MultiBinary
    check_loss_fits(cfg.kickstart_loss, heads, env_info.action_space)  # e.g. mse_mean without a Box head
    check_smoothing(cfg.kickstart_teacher_smoothing, heads, env_info.action_space)  # e.g. > 0 on Box actions only
    values = cfg.kickstart_value_coeff > 0
    teachers = read_teachers(cfg, specs, env_info)
    routing = TeacherRouting.of(specs, task_names)
    # every model built from what was read; the fast execution paths are built where the teachers run
    bank = TeacherBank(teachers, routing, env_info.obs_space, env_info.action_space, "cpu", fast=False, values=values)
    probe = probe_observations(cfg)
    for spec, teacher in zip(specs, bank.teachers):
        check_teacher_finite(teacher, probe)
        reads = ", ".join(k if k == s else f"{k} from {s}" for k, s in zip(teacher.obs_keys, teacher.input_keys))
        log.info(
            f"Teacher {spec.name}: {teacher.checkpoint_path} (trained {teacher.env_steps} frames, actions "
            f"{describe_actions(env_info.action_space)}, {cfg.kickstart_loss}, reads {reads}, rnn state "
            f"{teacher.rnn_size}, rho={spec.rho}) supervises {spec.tasks}"
        )
    return KickstartLayout(
        student_rnn=get_rnn_size(cfg),
        teacher_rnn=bank.rnn_size,
        num_logits=num_action_parameters(env_info.action_space),  # SF's action_logits width
        specs=specs,
        routing=routing,
        schedule=schedule,
        **score_targets(cfg, suite, specs, task_names),
        heads=heads,
        loss=cfg.kickstart_loss,
        value_coeff=float(cfg.kickstart_value_coeff),
        init_log_std=teacher_log_std(cfg, env_info.action_space, bank.teachers),
        untaught_entropy=float(cfg.kickstart_untaught_entropy),
        teacher_smoothing=float(cfg.kickstart_teacher_smoothing),
    )


def prepare(argv: Optional[List[str]] = None):
    cfg, suite = parse_args(argv)
    check_device(cfg.device)  # --device=gpu without CUDA: an error here, not an IndexError in SF's sampler
    check_eval_args(cfg)
    if cfg.restart_behavior == "resume":
        cfg = resume_cfg(cfg)
    if not isinstance(cfg, AttrDict):
        cfg = AttrDict(vars(cfg))  # SF #263: PBT (and restarts other than resume) need a subscriptable cfg
    check_student_checkpoint(cfg)
    recorded = cfg.get(provenance.IDENTITY_KEY)  # the teachers the run started with (config.json), None if new
    probed = []

    def env_info():
        if not probed:
            probed.append(probe_env_info(cfg))
        return probed[0]

    layout = build_layout(cfg, suite, env_info)  # schedule and teacher paths are checked before any env is made
    provenance.record_teachers(cfg, layout.specs if layout is not None else [], recorded)  # a changed teacher: error
    # an env that cannot be created in a fresh process is an error here, not a hang later; so is a
    # --student_obs_keys naming a key the env has not (ObsKeysError)
    student_env_info(cfg, env_info())
    return cfg, layout, suite
