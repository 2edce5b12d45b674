"""Test-only gymnasium envs used through `--env=tests.failing_env:<Id>` (gymnasium's module:id syntax)."""

import multiprocessing

import gymnasium as gym
import numpy as np


class FailInRolloutWorkerEnv(gym.Env):
    """Creates fine in the main process and SF's env-info probe, raises inside SF rollout workers."""

    observation_space = gym.spaces.Box(-1, 1, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, **kwargs):
        if multiprocessing.current_process().name.startswith("rollout_proc"):
            raise RuntimeError("this env cannot be created in a rollout worker (test)")

    def reset(self, seed=None, options=None):
        return np.zeros(4, np.float32), {}

    def step(self, action):
        return np.zeros(4, np.float32), 0.0, False, False, {}


class FailEverywhereEnv(FailInRolloutWorkerEnv):
    def __init__(self, **kwargs):
        raise RuntimeError("this env cannot be created at all (test)")


gym.register("SfKickstartFailInWorker-v0", entry_point=FailInRolloutWorkerEnv)
gym.register("SfKickstartFailEverywhere-v0", entry_point=FailEverywhereEnv)
