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


class CrashOnceEnv(gym.Env):
    """Episodes of 10 steps, reward 1 per step. With `SF_KICKSTART_TEST_CRASH=<marker path>|<text>`, the first creation
    in a rollout worker whose run's command line contains <text> raises, once (the marker file records it): one run
    that crashes part-way through a population."""

    observation_space = gym.spaces.Box(-1, 1, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, **kwargs):
        import os

        import psutil

        self.t = 0
        spec = os.environ.get("SF_KICKSTART_TEST_CRASH")
        if not spec or not multiprocessing.current_process().name.startswith("rollout_proc"):
            return
        marker, text = spec.split("|", 1)
        if text not in " ".join(psutil.Process(os.getppid()).cmdline()):
            return
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        raise RuntimeError("crashing once (test)")

    def reset(self, seed=None, options=None):
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(4, np.float32), 1.0, self.t >= 10, False, {}


gym.register("SfKickstartFailInWorker-v0", entry_point=FailInRolloutWorkerEnv)
gym.register("SfKickstartCrashOnce-v0", entry_point=CrashOnceEnv)
gym.register("SfKickstartFailEverywhere-v0", entry_point=FailEverywhereEnv)
