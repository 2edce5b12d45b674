"""Env families that `python -m sf_kickstart.train --env=NAME` understands.

Kickstarting is env-agnostic: a suite is only a registration with Sample Factory (env factory, extra flags, default
overrides, per-task summaries). Every family is declared here; `suite_for_env(name)` picks the one whose `matches`
accepts the env name, and raises `SuiteError` (before any worker starts) when none does.

Contract for a multi-task suite (minigrid, atari, dmlab):
  * observations are a Dict with the key TASK_ID_KEY: a one-hot float32 Box(0, 1, (num_tasks,)) over the suite's
    *full* task list, so a single-task env and the whole suite share one observation space;
  * `task_names(env)` is that full ordered list (index == task id);
  * `install(cfg, runner)` registers the per-task episodic-stats handler and summaries, and puts the capped mean
    normalised score into `runner.policy_avg_stats[SUITE_SCORE_KEY]` (the PBT objective).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

TASK_ID_KEY = "task_id"
SUITE_SCORE_KEY = "suite_score"


class SuiteError(ValueError):
    """Unknown suite/task or a suite whose simulator is not installed."""


@dataclass
class Suite:
    name: str
    module: str  # module implementing the functions below (imported lazily: simulators may be missing)
    prefixes: List[str] = field(default_factory=list)
    exact: List[str] = field(default_factory=list)

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

    def suite_score(self, mean_returns: Mapping[str, float]) -> Optional[float]:
        """The family's capped mean normalised score of per-task mean returns; None for a family without one."""
        fn = getattr(self.load(), "capped_mean_normalized_score", None)
        return None if fn is None else float(fn(mean_returns))

    def normalized_score(self, task: str, mean_return: float) -> Optional[float]:
        fn = getattr(self.load(), "normalized_score", None)
        return None if fn is None else float(fn(task, mean_return))


SUITES: List[Suite] = [
    Suite("minigrid", "sf_kickstart.suites.minigrid", prefixes=["minigrid_"]),
    Suite("atari", "sf_kickstart.suites.atari", prefixes=["atari_"]),
    Suite("dmlab", "sf_kickstart.suites.dmlab30", prefixes=["dmlab_"]),
    Suite("vizdoom", "sf_kickstart.suites.vizdoom", prefixes=["doom_"]),
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



def publish_suite_summaries(
    runner, policy_id: int, writer, env_steps: int, raw: dict, normalized: dict, suite_score: float,
    num_policies: int, seen_tag: str,
) -> None:
    """Tensorboard `suite/<task>_score`, `suite/<task>_normalized`, `suite/score`, `suite/mean_normalized`,
    `suite/<seen_tag>`, and the suite score as `runner.policy_avg_stats[SUITE_SCORE_KEY]` (the PBT objective)."""
    from collections import deque

    import numpy as np

    for task, value in raw.items():
        writer.add_scalar(f"suite/{task}_score", value, env_steps)
        writer.add_scalar(f"suite/{task}_normalized", normalized[task], env_steps)
    writer.add_scalar("suite/score", suite_score, env_steps)
    writer.add_scalar("suite/mean_normalized", float(np.mean(list(normalized.values()))), env_steps)
    writer.add_scalar(f"suite/{seen_tag}", len(raw), env_steps)
    avg = runner.policy_avg_stats
    if SUITE_SCORE_KEY not in avg or len(avg[SUITE_SCORE_KEY]) < num_policies:
        avg[SUITE_SCORE_KEY] = [deque(maxlen=1) for _ in range(num_policies)]
    avg[SUITE_SCORE_KEY][policy_id].append(suite_score)
