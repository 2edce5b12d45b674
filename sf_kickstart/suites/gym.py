"""Any registered gymnasium id as a single-task env (e.g. ``--env=CartPole-v1``), like ``sf_examples/train_gym_env.py``.

Accepted names:
    ``<id>``          an id in gymnasium's registry (``CartPole-v1``, ``LunarLander-v2`` with box2d installed, ...);
    ``ALE/<Game>-v5`` and the other Atari ids: ale-py >= 0.9 registers them only when ``ale_py`` is imported, so the
                      lookup and the env factory import it (SF_NOTES: without that a worker raises ``NameNotFound``);
    ``<module>:<id>`` gymnasium's own syntax: ``module`` is imported first (it registers ``id``), in this process and
                      in every worker.

Sample Factory wraps a non-Dict observation into ``{"obs": ...}`` itself; a Dict observation is used as is. There is
no task id: a gym env is one task, ``task_names(env) == [env]``. The factory never swallows an error: an env that
cannot be made raises in the worker, with gymnasium's own message.
"""

from __future__ import annotations

import importlib
from typing import Optional

import gymnasium

from sample_factory.algo.utils.context import global_env_registry
from sample_factory.envs.env_utils import register_env

from sf_kickstart.suites.registry import SuiteError


def _split_module(env: str):
    """'pkg.mod:Id-v0' -> ('pkg.mod', 'Id-v0'); 'Id-v0' -> (None, 'Id-v0')."""
    if ":" in env:
        module, env_id = env.split(":", 1)
        return module, env_id
    return None, env


def _import_registering_modules(env: str) -> str:
    """Import whatever registers `env` in this process; return the bare gymnasium id. Raises ImportError."""
    module, env_id = _split_module(env)
    if module:
        importlib.import_module(module)
    if env_id not in gymnasium.registry:
        # Atari ids (ALE/Pong-v5, PongNoFrameskip-v4, ...) exist only after `import ale_py` (ale-py >= 0.9)
        try:
            import ale_py  # noqa: F401
        except ImportError:
            pass
    return env_id


def is_gym_id(env: str) -> bool:
    """True when `env` names an env in gymnasium's registry (after importing its registering module, if any)."""
    if not isinstance(env, str) or not env:
        return False
    try:
        env_id = _import_registering_modules(env)
    except ImportError:
        return False
    return env_id in gymnasium.registry


def check_available(env: str) -> None:
    module, env_id = _split_module(env)
    if module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise SuiteError(f"{env!r}: cannot import {module!r}, which should register {env_id!r}: {e}") from e
    if not is_gym_id(env):
        raise SuiteError(f"{env!r} is not a registered gymnasium id (e.g. CartPole-v1)")


def make_gym_env(full_env_name: str, cfg=None, env_config=None, render_mode: Optional[str] = None):
    """Sample Factory env factory (module level: SF pickles the env registry into its spawned workers)."""
    env_id = _import_registering_modules(full_env_name)
    return gymnasium.make(env_id, render_mode=render_mode)


def register(env: str) -> None:
    """Register `env` with Sample Factory (re-registering the same factory is a no-op)."""
    if not is_gym_id(env):
        raise SuiteError(f"{env!r} is not a registered gymnasium id (e.g. CartPole-v1)")
    if global_env_registry().get(env) is not make_gym_env:
        register_env(env, make_gym_env)


def task_names(env: str):
    return [env]
