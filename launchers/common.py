"""What the launcher modules share: the compute budget, run naming, command building and the stage-1 paths.

Budget (`SF_KICKSTART_BUDGET`, read when a launcher module is imported)
------------------------------------------------------------------------
Sample Factory's launcher (`python -m sample_factory.launcher.run`) parses only its own flags and then imports the
module named by `--run`, so the budget is an environment variable:

    SF_KICKSTART_BUDGET=smoke   CI size: 10K frames a run, one seed, tiny batches (a whole stage in minutes)
    SF_KICKSTART_BUDGET=cpu     a 2-core box in a few hours: teacher 400K, students 200K frames, 3 seeds of 8 methods
    SF_KICKSTART_BUDGET=small   one box overnight: 2M frames a run, 2 seeds           (default)
    SF_KICKSTART_BUDGET=full    a cluster: teacher 20M, students 50M frames, 3 seeds

See `BUDGETS` for every number (frames, seeds, the linear-λ horizons, PBT population and periods).
`SF_KICKSTART_METHODS=ks_const_l1,ks_pbt` runs only those methods of the ablation, in that order (default: the
budget's `methods`, else every method); an unknown name is an error listing the known ones.
`SF_KICKSTART_EXTRA_ARGS="--num_workers=14 --device=gpu"` appends flags to every generated command (e.g. to use a
bigger machine than the 2-core presets were tuned for); they must be flags of `python -m sf_kickstart.train`.

Naming
------
Every run is one Sample Factory experiment named `<method>_seed<N>` (`run_name`), one `Experiment` per method, so
the launcher puts it in `<train_dir>/<run description name>/<method>_<experiment_suffix>/<method>_seed<N>/`.
`sf_kickstart.report` groups experiments into methods by stripping the `_seed<N>` suffix (and reads the seed from
`config.json`). Sample Factory's own `Experiment` would name them `NN_<method>_see_<N>`; the report understands that
too, but `<method>_seed<N>` is what a person types as `--teacher=`.

Commands are split on single spaces by Sample Factory's process launcher (no shell), so no token may contain a
space: `cmd()` checks that.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from os.path import join
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from sample_factory.launcher.run_description import Experiment, RunDescription

from sf_kickstart.errors import UserError
from sf_kickstart.experiments import CHECKPOINT_PREFIXES, checkpoint_paths, format_frames

BUDGET_ENV = "SF_KICKSTART_BUDGET"
EXTRA_ARGS_ENV = "SF_KICKSTART_EXTRA_ARGS"
TEACHER_ENV = "SF_KICKSTART_TEACHER"
METHODS_ENV = "SF_KICKSTART_METHODS"
DEFAULT_BUDGET = "small"

TRAIN_MODULE = "python -m sf_kickstart.train"
SMALL_PRESET = "minigrid_small_teacher.yaml"
LARGE_PRESET = "minigrid_large_student.yaml"

#: stage 1 (launchers.minigrid_teachers): run description name, method name; its seed-0 run is the teacher
TEACHERS_RUN = "minigrid_teachers"
TEACHER_METHOD = "small_scratch"
TEACHER_SEED = 0


class LauncherError(UserError):
    """A budget, method list or extra flag the launcher cannot use (raised when Sample Factory imports the run)."""


@dataclass(frozen=True)
class Budget:
    name: str
    teacher_frames: int  # the small agent (teacher and small-from-scratch baseline)
    student_frames: int  # every large-agent run of the ablation
    expert_frames: int  # one single-task expert (launchers.minigrid_experts)
    seeds: Tuple[int, ...]
    horizons: Tuple[int, ...]  # linear λ: frames where λ reaches 0
    pbt_policies: int  # population size of the PBT-λ run
    pbt_period: int  # --pbt_period_env_steps
    pbt_start: int  # --pbt_start_mutation
    extra: Tuple[str, ...] = ()  # flags added to every command of this budget
    methods: Tuple[str, ...] = ()  # the ablation's methods at this budget, in launch order (empty: every method)


# smoke: ~15-30 s a run on a 2-core box; 12 envs (6 per worker: a multiple of worker_num_splits=2) cover all 9 suite tasks (env_id % 9)
_SMOKE_EXTRA = (
    "--num_envs_per_worker=6",
    "--batch_size=256",
    "--stats_avg=10",
    "--save_every_sec=5",
    "--experiment_summaries_interval=1",
    "--decorrelate_experience_max_seconds=0",
)

BUDGETS: Dict[str, Budget] = {
    "smoke": Budget(
        "smoke",
        teacher_frames=10_000,
        student_frames=10_000,
        expert_frames=10_000,
        seeds=(0,),
        horizons=(2_500, 5_000, 10_000),
        pbt_policies=2,
        pbt_period=2_000,
        pbt_start=2_000,
        extra=_SMOKE_EXTRA,
    ),
    # cpu: 3 seeds of the methods that carry the paper's findings (the full grid does not fit a 2-core box)
    "cpu": Budget(
        "cpu",
        teacher_frames=400_000,
        student_frames=200_000,
        expert_frames=200_000,
        seeds=(0, 1, 2),
        horizons=(50_000, 100_000),
        pbt_policies=4,
        pbt_period=20_000,
        pbt_start=20_000,
        methods=(  # in launch order: the comparisons that matter most first
            "large_scratch",
            "ks_const_l1",
            "ks_adaptive",
            "ks_reengage",
            "ks_linear_l1_to50k",
            "ks_pbt",
            "ks_linear_l1_to100k",
            "distill",
        ),
    ),
    "small": Budget(
        "small",
        teacher_frames=2_000_000,
        student_frames=2_000_000,
        expert_frames=1_000_000,
        seeds=(0, 1),
        horizons=(250_000, 500_000, 1_000_000),
        pbt_policies=4,
        pbt_period=100_000,
        pbt_start=200_000,
    ),
    "full": Budget(
        "full",
        teacher_frames=20_000_000,
        student_frames=50_000_000,
        expert_frames=10_000_000,
        seeds=(0, 1, 2),
        horizons=(5_000_000, 10_000_000, 25_000_000),
        pbt_policies=8,
        pbt_period=1_000_000,
        pbt_start=2_000_000,
    ),
}


def get_budget(name: Optional[str] = None) -> Budget:
    """The budget named by `name`, else by $SF_KICKSTART_BUDGET, else 'small'."""
    name = name if name is not None else os.environ.get(BUDGET_ENV, DEFAULT_BUDGET)
    name = name.strip().lower() or DEFAULT_BUDGET
    if name not in BUDGETS:
        raise LauncherError(f"{BUDGET_ENV}={name!r}: expected one of {', '.join(BUDGETS)}")
    return BUDGETS[name]


def selected_methods(
    budget: Budget, known: Sequence[str], value: Optional[str] = None, opt_in: Sequence[str] = ()
) -> List[str]:
    """The methods to launch: $SF_KICKSTART_METHODS (or `value`) when set, else the budget's, else every `known`
    method but the `opt_in` ones (run only when named)."""
    value = value if value is not None else os.environ.get(METHODS_ENV, "")
    default = budget.methods or [m for m in known if m not in opt_in]
    chosen = [m.strip() for m in value.split(",") if m.strip()] or list(default)
    unknown = [m for m in chosen if m not in known]
    if unknown:
        raise LauncherError(f"{METHODS_ENV}: unknown methods {unknown}; known: {', '.join(known)}")
    return chosen


def extra_args(value: Optional[str] = None) -> List[str]:
    """Flags from $SF_KICKSTART_EXTRA_ARGS (or `value`), each '--flag=value'."""
    value = value if value is not None else os.environ.get(EXTRA_ARGS_ENV, "")
    tokens = shlex.split(value)
    bad = [t for t in tokens if not t.startswith("--") or "=" not in t or " " in t]
    if bad:
        raise LauncherError(f"{EXTRA_ARGS_ENV}: every token must look like --flag=value without spaces, got {bad}")
    return tokens


def frames_label(frames: float) -> str:
    """250000 -> '250k', 2000000 -> '2M', 2500000 -> '2.5M' (used in method names)."""
    return format_frames(frames, digits=None)


def cmd(*tokens: str) -> str:
    """A command line as Sample Factory's launcher wants it: tokens joined by single spaces, none containing one."""
    bad = [t for t in tokens if not t or " " in t]
    if bad:
        raise LauncherError(
            f"Sample Factory's launcher splits commands on spaces; these tokens cannot be passed: {bad} "
            f"(use paths without spaces)"
        )
    return " ".join(tokens)


def train_cmd(preset: str, frames: int, budget: Budget, *flags: str) -> str:
    return cmd(
        *TRAIN_MODULE.split(" "),
        f"--preset={preset}",
        f"--train_for_env_steps={int(frames)}",
        *flags,
        *budget.extra,
        *extra_args(),
    )


def run_name(method: str, seed: int) -> str:
    return f"{method}_seed{seed}"


class NamedRuns(Experiment):
    """A Sample Factory `Experiment` whose runs carry explicit names: [(experiment name, {flag: value}), ...].

    Sample Factory names grid runs `NN_<base>_<shorthand>_<value>`; we want `<method>_seed<N>`, which is what a
    person passes as `--teacher` and what the report groups by. Everything else (root dir per Experiment, the
    `--experiment`/`--train_dir` flags, env vars) is Sample Factory's."""

    def __init__(self, base_name: str, base_cmd: str, runs: Sequence[Tuple[str, Mapping]], env_vars=None):
        super().__init__(base_name, base_cmd, [dict(p) for _, p in runs], env_vars)
        self.run_names = [name for name, _ in runs]
        if len(set(self.run_names)) != len(self.run_names):
            raise LauncherError(f"{base_name}: duplicate run names {self.run_names}")

    def generate_experiments(self, experiment_arg_name, customize_experiment_name, param_prefix):
        for name, params in zip(self.run_names, self.params):
            tokens = [f"{param_prefix}{k}={v}" for k, v in params.items()]
            tokens.append(f"{experiment_arg_name}={name}")
            yield f"{self.cmd} {cmd(*tokens)}", name


def seeded(method: str, base_cmd: str, seeds: Iterable[int]) -> NamedRuns:
    """One method, one run per seed, named <method>_seed<N>."""
    return NamedRuns(method, base_cmd, [(run_name(method, s), {"seed": s}) for s in seeds])


def experiment_path(train_dir: str, run_description_name: str, base_name: str, suffix: str, name: str) -> str:
    """Where Sample Factory's launcher puts a run (see RunDescription.generate_experiments)."""
    return join(train_dir, run_description_name, f"{base_name}_{suffix}", name)


def teacher_path(train_dir: str, suffix: str) -> str:
    """The stage-1 teacher as the ablation's `--teacher`: $SF_KICKSTART_TEACHER, else where
    `launchers.minigrid_teachers` put its seed-0 run under the same --train_dir and --experiment_suffix."""
    override = os.environ.get(TEACHER_ENV)
    if override:
        return override
    return experiment_path(train_dir, TEACHERS_RUN, TEACHER_METHOD, suffix, run_name(TEACHER_METHOD, TEACHER_SEED))


def has_checkpoint(exp_dir: str, policy: int = 0) -> bool:
    return any(checkpoint_paths(exp_dir, policy, kind) for kind in CHECKPOINT_PREFIXES)


class PlaceholderRunDescription(RunDescription):
    """A RunDescription whose commands may contain placeholders resolved when the launcher generates them.

    Sample Factory sets `--train_dir` and `--experiment_suffix` only after importing the run module, and hands
    `train_dir` to `generate_experiments`; a kickstarted run needs the stage-1 teacher's path, which depends on both.
    `resolvers` maps a placeholder string to `f(train_dir, experiment_suffix) -> str`."""

    def __init__(self, run_name, experiments, resolvers=None, **kwargs):
        super().__init__(run_name, experiments, **kwargs)
        self.resolvers = dict(resolvers or {})

    def resolve(self, train_dir: str) -> Dict[str, str]:
        return {key: f(train_dir, self.experiment_suffix) for key, f in self.resolvers.items()}

    def generate_experiments(self, train_dir, makedirs=True):
        values = self.resolve(train_dir)
        for experiment_cmd, name, root_dir, env_vars in super().generate_experiments(train_dir, makedirs):
            for key, value in values.items():
                if key in experiment_cmd:
                    experiment_cmd = experiment_cmd.replace(key, cmd(value))
            yield experiment_cmd, name, root_dir, env_vars
