"""What every multi-task suite module repeats, written once (the bottom of `suites/`: imports nothing of the project).

A family of envs named `<prefix><task>` (MiniGrid's `minigrid_DoorKey-5x5`, Atari's `atari_breakout`) whose envs
report a finished episode's raw return as `info["episode_extra_stats"]["<prefix><task>_<stat>"]`, and whose
observations carry a one-hot task id over the suite's task list (`registry.TASK_ID_KEY`). `TaskFamily` gives the
module functions `task_envs` and `stat_key` and the stat map that `scoring.install_suite_score` reads.

`PrivilegedObservation` turns a flat Box-observation env into a privileged-teacher task: a Dict whose `"obs"`
(PARTIAL_KEY) is the observation with some indices hidden (the student's) and whose `"state"` (STATE_KEY) is the
full observation, unchanged (the privileged teacher's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import gymnasium as gym
import numpy as np


def cfg_value(cfg, key: str, default=None):
    """A flag's value from a cfg that may be an AttrDict, a plain dict, an argparse Namespace or None."""
    if cfg is None:
        return default
    if isinstance(cfg, Mapping):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def one_hot(index: int, size: int) -> np.ndarray:
    """float32 [size] with a 1 at `index`: a task id as observations carry it."""
    v = np.zeros(size, dtype=np.float32)
    v[index] = 1.0
    return v


def task_id_space(num_tasks: int) -> gym.spaces.Box:
    """The space of the one-hot task id over a suite of `num_tasks` tasks."""
    return gym.spaces.Box(0.0, 1.0, (num_tasks,), dtype=np.float32)


def with_episode_stat(info: Mapping, key: str, value: float) -> dict:
    """A copy of an env step's `info` with `info["episode_extra_stats"][key] = value` (what SF's runner collects)."""
    info = dict(info)
    info["episode_extra_stats"] = {**info.get("episode_extra_stats", {}), key: value}
    return info


@dataclass(frozen=True)
class TaskFamily:
    """A suite's env names and episode stat keys. `validate(env)` is the module's own `validate_env_name`: the tasks
    an env name plays (SuiteError for an unknown one)."""

    prefix: str  # e.g. "minigrid_": a single task's env is prefix + task
    stat: str  # e.g. "raw_return": the episode_extra_stats key of a task is prefix + task + "_" + stat
    validate: Callable[[str], List[str]]

    def single_task(self, env_name: str, tasks: Sequence[str]) -> Optional[str]:
        """The task `env_name` (`<prefix><task>`) plays when it is one of `tasks`, else None."""
        task = env_name[len(self.prefix) :] if env_name.startswith(self.prefix) else None
        return task if task in tasks else None

    def task_envs(self, env_name: str) -> Dict[str, str]:
        """The tasks `env_name` plays -> the single-task env name of each (`<prefix><task>`, same spaces)."""
        return {t: self.prefix + t for t in self.validate(env_name)}

    def stat_key(self, task: str) -> str:
        """Key of a task's raw episode return in info["episode_extra_stats"]."""
        return f"{self.prefix}{task}_{self.stat}"

    def stat_keys(self, tasks: Sequence[str]) -> Dict[str, str]:
        """episode_extra_stats key -> task, for `scoring.install_suite_score`."""
        return {self.stat_key(t): t for t in tasks}


PARTIAL_KEY = "obs"  # a privileged task's partial observation: the student's key
STATE_KEY = "state"  # a privileged task's full observation: the privileged teacher's key


class PrivilegedObservation(gym.ObservationWrapper):
    """A flat Box-observation env as Dict(obs=the observation without the `hidden` indices, state=the full
    observation, the env's own space and values unchanged)."""

    def __init__(self, env: gym.Env, hidden: Sequence[int]):
        super().__init__(env)
        box = env.observation_space
        if not isinstance(box, gym.spaces.Box) or len(box.shape) != 1:
            raise ValueError(f"PrivilegedObservation needs a flat Box observation, got {box}")
        self.keep = np.setdiff1d(np.arange(box.shape[0]), np.asarray(hidden, dtype=np.intp))
        partial = gym.spaces.Box(box.low[self.keep], box.high[self.keep], dtype=box.dtype)
        self.observation_space = gym.spaces.Dict({PARTIAL_KEY: partial, STATE_KEY: box})

    def observation(self, observation):
        return {PARTIAL_KEY: observation[self.keep], STATE_KEY: observation}
