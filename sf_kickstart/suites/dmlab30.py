"""DMLab-30 (``--env=dmlab_30``) and single DeepMind Lab levels through Sample Factory's example, ``sf_examples.dmlab``.

Env names:
    ``dmlab_30``           all 30 DMLab-30 levels: env instance i plays level ``i % 30`` (``env_config.env_id``, or
                           ``worker_index`` with ``--dmlab_one_task_per_worker=True``), SF's own multi-task setup;
    ``dmlab_<level>``      one DMLab-30 level, ``<level>`` from ``DMLAB30_LEVELS`` (e.g. ``dmlab_rooms_watermaze``,
                           ``dmlab_explore_goal_locations_small``): per-level teachers for a ``dmlab_30`` student;
    SF's other names       ``dmlab_watermaze``, ``dmlab_sparse``, ``dmlab_level_cache``, ... (``DMLAB_ENVS``), and
                           SF's fallback ``dmlab_<level path>``.
All are built by SF's ``make_dmlab_env_impl`` (observation ``{"obs": RGB, "INSTR": instruction tokens}``, SF's action
set, IMPALA's optimistic asymmetric reward clipping, raw scores in ``episode_extra_stats``) and then get the task id:

Task id: SF keeps the level index only as ``DmlabGymEnv.task_id`` (used in its stat keys ``z_<task_id>_<level>_...``),
not in the observation. ``DmlabTaskId`` adds ``registry.TASK_ID_KEY``: a float32 one-hot Box(0, 1, (30,)) of the level's
index in ``DMLAB30_LEVELS`` (found by level name, so a single-level env and ``dmlab_30`` agree); all zeros for a level
outside DMLab-30. ``task_names(env)`` is ``DMLAB30_LEVELS`` for every env of this suite. SF's DMLab encoder reads
``obs`` and ``INSTR`` only, and ``dmlab_override_defaults`` normalises only ``obs``.

Score: SF's ``dmlab_extra_episodic_stats_processing`` / ``dmlab_extra_summaries`` (IMPALA's capped mean
human-normalised score, in percent, over all levels of the env, written as ``_dmlab/*`` once every level has finished
an episode), registered as ``train_dmlab.register_msg_handlers`` does, but for every env whose levels are all
DMLab-30 levels, not only ``dmlab_30``. SF puts the score into ``runner.policy_avg_stats["dmlab_target_objective"]``;
our observer mirrors it into ``policy_avg_stats[registry.SUITE_SCORE_KEY]`` (the PBT objective) and ``suite/score``.

Level cache: ``install`` builds SF's level caches (``--dmlab_use_level_cache``, default on) and re-registers the env
with them, as ``train_dmlab.main`` does; it must run before ``runner.init()`` starts the workers.

deepmind_lab is not on PyPI: it is built from source (https://github.com/deepmind/lab), see ``INSTALL_HINT``.
``sf_examples.dmlab.dmlab_env`` / ``train_dmlab`` import it at their top, so they are imported lazily here.
"""

from __future__ import annotations

from typing import List, Optional

import gymnasium as gym
import numpy as np

from sample_factory.algo.runners.runner import AlgoObserver
from sample_factory.algo.utils.context import global_env_registry, global_model_factory
from sample_factory.envs.env_utils import register_env
from sample_factory.utils.utils import log
from sf_examples.dmlab.dmlab30 import DMLAB30_LEVELS, LEVEL_MAPPING, dmlab30_level_name_to_level
from sf_examples.dmlab.dmlab_params import add_dmlab_env_args, dmlab_override_defaults
from sf_examples.dmlab.dmlab_utils import dmlab_available

from sf_kickstart import tags
from sf_kickstart.suites.base import one_hot, task_id_space
from sf_kickstart.suites.registry import SUITE_SCORE_KEY, TASK_ID_KEY, SuiteError
from sf_kickstart.suites.scoring import publish_suite_score, warn_if_batched

ENV_PREFIX = "dmlab_"
SUITE_ENV = "dmlab_30"
NUM_LEVELS = len(DMLAB30_LEVELS)
DMLAB_TARGET_OBJECTIVE = "dmlab_target_objective"  # the key SF's dmlab_extra_summaries fills

INSTALL_HINT = (
    "deepmind_lab is not installed. It is not on PyPI: build it from source, https://github.com/deepmind/lab "
    "(bazel build -c opt //python/pip_package:build_pip_package && "
    "./bazel-bin/python/pip_package/build_pip_package /tmp/dmlab_pkg), then install the wheel it builds, package "
    "'deepmind-lab': pip install /tmp/dmlab_pkg/deepmind_lab-1.0-py3-none-any.whl ; "
    "Sample Factory's DMLab example also needs: pip install dm_env, apt install libosmesa6-dev (software renderer), "
    "and for DMLab-30's psychlab levels the Brady/Konkle/Oliva 2008 image set at --dmlab30_dataset"
)

SINGLE_LEVEL_ENVS: List[str] = [ENV_PREFIX + level for level in DMLAB30_LEVELS]


def _level_name(level: str) -> str:
    return level.split("/")[-1]


def validate_env_name(env_name: str) -> None:
    if not env_name.startswith(ENV_PREFIX) or len(env_name) == len(ENV_PREFIX):
        raise SuiteError(
            f"Unknown DMLab env {env_name!r}: expected {SUITE_ENV} or one of {', '.join(SINGLE_LEVEL_ENVS)}"
        )


def task_names(env_name: str) -> List[str]:
    """DMLab-30's levels (index == task id), the same list for dmlab_30 and every single-level env."""
    validate_env_name(env_name)
    return list(DMLAB30_LEVELS)


def check_available(env_name: str) -> None:
    validate_env_name(env_name)
    if not dmlab_available():
        raise SuiteError(f"{env_name!r} needs DeepMind Lab. {INSTALL_HINT}")


def dmlab_spec(env_name: str):
    """SF's DmLabSpec for `env_name`: ours for ``dmlab_<DMLab-30 level>``, SF's ``dmlab_env_by_name`` otherwise."""
    from sf_examples.dmlab.dmlab_env import DmLabSpec, dmlab_env_by_name  # imports deepmind_lab

    level = env_name[len(ENV_PREFIX) :]
    if level in DMLAB30_LEVELS:
        return DmLabSpec(env_name, dmlab30_level_name_to_level(level))
    return dmlab_env_by_name(env_name)


def env_levels(env_name: str) -> List[str]:
    """The level paths an env plays (what SF's level cache is built for)."""
    level = dmlab_spec(env_name).level
    return [level] if isinstance(level, str) else list(level)


def task_one_hot(level: str) -> np.ndarray:
    """One-hot over DMLAB30_LEVELS of a level path or name; all zeros for a level outside DMLab-30."""
    name = _level_name(level)
    if name not in DMLAB30_LEVELS:
        return np.zeros(NUM_LEVELS, dtype=np.float32)
    return one_hot(DMLAB30_LEVELS.index(name), NUM_LEVELS)


class DmlabTaskId(gym.ObservationWrapper):
    """Adds ``TASK_ID_KEY`` (one-hot of the level over DMLab-30) to SF's Dict observation."""

    def __init__(self, env):
        super().__init__(env)
        level = env.unwrapped.level
        self._one_hot = task_one_hot(level)
        if not self._one_hot.any():
            log.warning("DMLab level %r is not a DMLab-30 level: its %r is all zeros", level, TASK_ID_KEY)
        spaces = dict(env.observation_space.spaces)
        spaces[TASK_ID_KEY] = task_id_space(NUM_LEVELS)
        self.observation_space = gym.spaces.Dict(spaces)

    def observation(self, observation):
        observation = dict(observation)
        observation[TASK_ID_KEY] = self._one_hot.copy()
        return observation


class DmlabSuiteEnvFactory:
    """Sample Factory env factory: SF's DMLab env (with the level caches, once installed) plus the task id.

    A module-level class, picklable with its caches like SF's ``DmlabEnvWithCache``."""

    def __init__(self, level_caches=None):
        self.level_caches = level_caches

    def __call__(self, full_env_name: str, cfg=None, env_config=None, render_mode: Optional[str] = None):
        from sf_examples.dmlab.dmlab_env import make_dmlab_env_impl  # imports deepmind_lab: fails loudly if missing

        env = make_dmlab_env_impl(dmlab_spec(full_env_name), cfg, env_config, render_mode, self.level_caches)
        return DmlabTaskId(env)


def _register_envs(names: List[str], factory: DmlabSuiteEnvFactory) -> None:
    for name in names:
        register_env(name, factory)


def register(env_name: str) -> None:
    """Register ``env_name``, ``dmlab_30`` and the 30 single-level envs, and SF's DMLab encoder (instructions LSTM)."""
    validate_env_name(env_name)
    from sf_examples.dmlab.dmlab_model import make_dmlab_encoder  # no deepmind_lab import

    registry = global_env_registry()
    names = list(dict.fromkeys([env_name, SUITE_ENV] + SINGLE_LEVEL_ENVS))
    if not all(isinstance(registry.get(n), DmlabSuiteEnvFactory) for n in names):
        _register_envs(names, DmlabSuiteEnvFactory())
    global_model_factory().register_encoder_factory(make_dmlab_encoder)


def add_args(parser) -> None:
    add_dmlab_env_args(parser)


def override_defaults(env_name: str, parser) -> None:
    dmlab_override_defaults(parser)


# ---------------------------------------------------------------------------------------------------------------------
# score


def mirror_suite_score(runner, policy_id: int) -> Optional[float]:
    """Copy SF's latest ``dmlab_target_objective`` of a policy into ``policy_avg_stats[SUITE_SCORE_KEY]``."""
    src = runner.policy_avg_stats.get(DMLAB_TARGET_OBJECTIVE)
    if src is None or len(src) <= policy_id or len(src[policy_id]) == 0:
        return None
    value = float(src[policy_id][-1])
    publish_suite_score(runner, policy_id, value, len(src))
    return value


class DmlabSuiteSummaries(AlgoObserver):
    """SF's ``dmlab_extra_summaries`` (as ``train_dmlab.DmlabExtraSummariesObserver``), then the suite-score mirror."""

    def extra_summaries(self, runner, policy_id, writer, env_steps: int) -> None:
        from sf_examples.dmlab.dmlab_env import dmlab_extra_summaries

        dmlab_extra_summaries(runner, policy_id, env_steps, writer)
        value = mirror_suite_score(runner, policy_id)
        if value is not None:
            writer.add_scalar(tags.SUITE_SCORE, value, env_steps)


def has_normalized_score(env_name: str) -> bool:
    """True when every level of the env has DMLab-30 human/random scores (SF's summaries need them)."""
    return all(_level_name(level) in LEVEL_MAPPING for level in env_levels(env_name))


def install(cfg, runner) -> None:
    """SF's level caches and DMLab-30 score handlers on a runner; call before ``runner.init()``."""
    check_available(cfg.env)
    from sf_examples.dmlab.dmlab_env import dmlab_extra_episodic_stats_processing

    caches = None
    if getattr(cfg, "dmlab_use_level_cache", False):
        from sample_factory.algo.utils.multiprocessing_utils import get_mp_ctx
        from sample_factory.utils.utils import experiment_dir
        from sf_examples.dmlab.dmlab_level_cache import make_dmlab_caches

        caches = make_dmlab_caches(
            experiment_dir(cfg),
            env_levels(cfg.env),
            cfg.num_policies,
            cfg.dmlab_level_cache_path,
            get_mp_ctx(cfg.serial_mode),
        )
    _register_envs([cfg.env], DmlabSuiteEnvFactory(caches))

    if not has_normalized_score(cfg.env):
        log.warning("%s: a level outside DMLab-30, no human-normalised score / %r", cfg.env, SUITE_SCORE_KEY)
        return
    warn_if_batched(cfg, cfg.env)
    runner.register_episodic_stats_handler(dmlab_extra_episodic_stats_processing)
    runner.register_observer(DmlabSuiteSummaries())
