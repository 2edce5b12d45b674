"""Env families that `python -m sf_kickstart.train --env=NAME` understands.

Kickstarting is env-agnostic: a suite is only a registration with Sample Factory (env factory, extra flags, default
overrides, per-task summaries). Every family is declared here; `suite_for_env(name)` picks the one whose `matches`
accepts the env name, and raises `SuiteError` (before any worker starts) when none does.

Contract for a multi-task suite (minigrid, atari, dmlab):
  * observations are a Dict with the key TASK_ID_KEY: a one-hot float32 Box(0, 1, (num_tasks,)) over the suite's
    *full* task list, so a single-task env and the whole suite share one observation space;
  * `task_names(env)` is that full ordered list (index == task id);
  * `install(cfg, runner)` registers the per-task episodic-stats handler and summaries, and puts the capped mean
    normalised score into `runner.policy_avg_stats[SUITE_SCORE_KEY]` (the PBT objective), through the one scoring
    implementation in `sf_kickstart.suites.scoring`; such a suite is declared with `has_suite_score=True`.
  * optional, for evaluation (`sf_kickstart.evaluate`): `task_envs(env)` (task -> single-task env name) and `SCORES`,
    the suite's `scoring.ScoreTable` (`Suite.score_table()`): evaluation normalises with the same table as training.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional

from sf_kickstart.errors import UserError
from sf_kickstart.tags import SUITE_SCORE_KEY  # noqa: F401 - re-exported: suites and tests import it from here

if TYPE_CHECKING:
    from sf_kickstart.suites.scoring import ScoreTable

TASK_ID_KEY = "task_id"


def task_indices(task_id):
    """Each row's task index from its one-hot `TASK_ID_KEY` observation (a torch tensor [..., num_tasks]): the argmax
    over the last dim. The one rule both the teacher bank's routing and the learner's per-task λ use."""
    return task_id.argmax(dim=-1)


class SuiteError(UserError):
    """Unknown suite/task or a suite whose simulator is not installed."""


@dataclass
class Suite:
    name: str
    module: str  # module implementing the functions below (imported lazily: simulators may be missing)
    prefixes: List[str] = field(default_factory=list)
    exact: List[str] = field(default_factory=list)
    #: the suite publishes a capped mean normalised score (`suite/score`, `policy_avg_stats[SUITE_SCORE_KEY]`): the
    #: default PBT objective (`--pbt_target_objective=suite_score`) of its runs
    has_suite_score: bool = False

    def matches(self, env: str) -> bool:
        return env in self.exact or any(env.startswith(p) for p in self.prefixes)

    def load(self):
        return importlib.import_module(self.module)

    # each of these delegates to the module; a module may omit the optional ones
    def check_available(self, env: str) -> None:
        fn = getattr(self.load(), "check_available", None)
        if fn is not None:
            fn(env)

    def register(self, env: str) -> None:
        self.load().register(env)

    def add_args(self, parser) -> None:
        fn = getattr(self.load(), "add_args", None)
        if fn is not None:
            fn(parser)

    def override_defaults(self, env: str, parser) -> None:
        fn = getattr(self.load(), "override_defaults", None)
        if fn is not None:
            fn(env, parser)

    def task_names(self, env: str) -> List[str]:
        fn = getattr(self.load(), "task_names", None)
        return list(fn(env)) if fn is not None else [env]

    def install(self, cfg, runner) -> None:
        fn = getattr(self.load(), "install", None)
        if fn is not None:
            fn(cfg, runner)

    def task_envs(self, env: str) -> Dict[str, str]:
        """The tasks `env` plays -> a single-task env name playing each (same spaces): what evaluation runs per task.
        A family without tasks plays itself."""
        fn = getattr(self.load(), "task_envs", None)
        return dict(fn(env)) if fn is not None else {env: env}

    def prepare_rendering(self, env: str) -> None:
        """Before `env` renders rgb frames (a video): whatever the family's renderer needs, checked (a SuiteError
        before anything is played when it cannot render here; MuJoCo: its OpenGL backend, MUJOCO_GL)."""
        fn = getattr(self.load(), "prepare_rendering", None)
        if fn is not None:
            fn(env)

    def scored_as(self, env: str) -> str:
        """The env whose returns `env`'s are comparable with (the same task and reward): itself, unless the family
        says otherwise (MuJoCo: a `_pomdp` variant is scored as its full-state task)."""
        fn = getattr(self.load(), "scored_as", None)
        return fn(env) if fn is not None else env

    def score_table(self) -> Optional["ScoreTable"]:
        """The family's `scoring.ScoreTable` (its module's SCORES), what evaluation normalises with; None for a family
        without one (evaluation then scores the mean return)."""
        return getattr(self.load(), "SCORES", None)


SUITES: List[Suite] = [
    Suite("minigrid", "sf_kickstart.suites.minigrid", prefixes=["minigrid_"], has_suite_score=True),
    Suite("atari", "sf_kickstart.suites.atari", prefixes=["atari_"], has_suite_score=True),
    Suite("dmlab", "sf_kickstart.suites.dmlab30", prefixes=["dmlab_"], has_suite_score=True),
    Suite("vizdoom", "sf_kickstart.suites.vizdoom", prefixes=["doom_"]),
    Suite("mujoco", "sf_kickstart.suites.mujoco", prefixes=["mujoco_"]),  # SF's names, and their _pomdp variants
    Suite("gym", "sf_kickstart.suites.gym", prefixes=[]),  # any registered gymnasium id, matched below
]


def suite_for_env(env: str) -> Suite:
    for suite in SUITES:
        if suite.matches(env):
            return suite
    gym_suite = SUITES[-1]
    if gym_suite.load().is_gym_id(env):
        return gym_suite
    families = ", ".join(f"{p}*" for s in SUITES for p in s.prefixes)
    raise SuiteError(
        f"Unknown env or suite {env!r}: expected one of the families {families}, or a registered gymnasium id "
        f"(e.g. CartPole-v1)"
    )


def prepare_env(env: str) -> Suite:
    """Find the suite, check its simulator is importable, and register its envs with Sample Factory."""
    suite = suite_for_env(env)
    suite.check_available(env)
    suite.register(env)
    return suite


def default_task_names(env: str) -> List[str]:
    return suite_for_env(env).task_names(env)


def same_scores(env_a: str, env_b: str) -> bool:
    """Runs on the two envs have comparable scores (`Suite.scored_as`); envs no family knows: by name."""
    try:
        return suite_for_env(env_a).scored_as(env_a) == suite_for_env(env_b).scored_as(env_b)
    except SuiteError:
        return env_a == env_b
