"""A test-only gymnasium env whose returns drop when the test says so, used through
`--env=tests.forgetting_env:SfKickstartForgetting-v0` (gymnasium's module:id syntax): a deterministic stand-in for a
student that forgets its task (re-engaging λ's e2e test). Episodes of `EPISODE_STEPS` steps paying `HIGH_REWARD` a
step, whatever the actions (return 10); from the first episode that starts after the file named by
`$SF_KICKSTART_TEST_FORGET` exists, `LOW_REWARD` a step (return 2.5). A file, not a step count: SF's workers start
seconds apart on a busy machine, so per-env step counts would drop the returns at different times."""

import os

import gymnasium as gym
import numpy as np

EPISODE_STEPS = 10
HIGH_REWARD, LOW_REWARD = 1.0, 0.25
ENV_ID = "SfKickstartForgetting-v0"
MARKER_ENV = "SF_KICKSTART_TEST_FORGET"


class ForgettingEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, **kwargs):
        self.marker = os.environ.get(MARKER_ENV)
        self.t, self.reward = 0, HIGH_REWARD

    def reset(self, seed=None, options=None):
        self.t = 0
        forgotten = self.marker is not None and os.path.exists(self.marker)
        self.reward = LOW_REWARD if forgotten else HIGH_REWARD
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(4, np.float32), self.reward, self.t >= EPISODE_STEPS, False, {}


gym.register(ENV_ID, entry_point=ForgettingEnv)
