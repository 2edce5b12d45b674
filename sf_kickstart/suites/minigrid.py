"""The embedded multi-task suite: MiniGrid tasks shaped like a miniature DMLab-30.

Tasks (index == task id; short name -> gymnasium id):

    0 Empty-Random-6x6   MiniGrid-Empty-Random-6x6-v0   navigation
    1 DoorKey-5x5        MiniGrid-DoorKey-5x5-v0        keys and doors
    2 DoorKey-8x8        MiniGrid-DoorKey-8x8-v0        keys and doors, hard sibling of 1
    3 KeyCorridorS3R1    MiniGrid-KeyCorridorS3R1-v0    keys, doors and a pick-up target
    4 KeyCorridorS3R3    MiniGrid-KeyCorridorS3R3-v0    hard sibling of 3 (more rooms to search)
    5 MultiRoom-N2-S4    MiniGrid-MultiRoom-N2-S4-v0    room-to-room navigation through doors
    6 MultiRoom-N4-S5    MiniGrid-MultiRoom-N4-S5-v1    hard sibling of 5 (sparse reward)
    7 MemoryS7           MiniGrid-MemoryS7-v0           memory: remember the cue, pick the matching end
    8 LavaGapS5          MiniGrid-LavaGapS5-v0          navigation with deadly lava

    MultiRoom-N4-S5 uses ``-v1``: in minigrid 3.x the legacy ``MiniGrid-MultiRoom-N4-S5-v0`` id is configured
    with *six* rooms (kept for backwards compatibility); ``-v1`` is the real four-room task.

Env names registered with Sample Factory:
    ``minigrid_suite``  every env instance plays one task for its whole life: task ``env_config.env_id % 9``
                        (task 0 when ``env_config`` is None), so a run with >= 9 envs covers every task evenly;
    ``minigrid_<Task>`` one task only, e.g. ``minigrid_DoorKey-8x8``.
Every one of them has the same observation and action space, so a teacher trained on one task can kickstart a
student on the suite, and vice versa.

Observation (``gymnasium.spaces.Dict``):
    ``"obs"``      uint8 Box(0, 1, (984,)): one-hot of MiniGrid's 7x7x3 egocentric image, cell by cell in the
                   image's own ``[i, j]`` order (cell c = 7*i + j), each cell 20 values:
                   ``[object type (11) | colour (6) | state (3)]``  -> 49*20 = 980 values,
                   followed by a one-hot of the agent's direction (4) -> 984.
                   Index of image[i, j, k] == v: ``20*(7*i + j) + (0, 11, 17)[k] + v``; direction d: ``980 + d``.
    ``"task_id"``  float32 Box(0, 1, (9,)): one-hot of the task id over the full task list above
                   (``registry.TASK_ID_KEY``), identical for a single-task env and the suite.
Actions: ``Discrete(7)`` for every task (MiniGrid's left, right, forward, pickup, drop, toggle, done).
Episodes end at the task's default ``max_steps``. The reward is MiniGrid's own: ``1 - 0.9 * steps / max_steps`` on
success, 0 otherwise (rewards are never shaped here).

Per-task stats: at the end of every episode the env puts
``info["episode_extra_stats"] = {"minigrid_<Task>_raw_return": R}`` (see ``stat_key``). Sample Factory's non-batched
sampler (the default, ``--batched_sampling=False``) forwards it in the episodic-stats message; the batched sampler drops
it, so the per-task summaries and the suite score need ``--batched_sampling=False``. Sample Factory itself also
averages that key into ``policy_stats/avg_minigrid_<Task>_raw_return``.

Suite score (``install(cfg, runner)``, the one implementation in ``sf_kickstart.suites.scoring``), computed like DMLab-30's capped mean human-normalised score (IMPALA,
Espeholt et al. 2018; ``sf_examples/dmlab/dmlab_env.py:dmlab_extra_summaries``), with a near-optimal oracle in
place of the human:
    1. per task, the mean raw return R_i over its last ``--stats_avg`` episodes (a sliding window per policy);
    2. normalised score  N_i = 100 * (R_i - RANDOM_SCORES[i]) / (REFERENCE_SCORES[i] - RANDOM_SCORES[i])
       (normalisation after the mean, as in IMPALA: 0 = uniform-random actions, 100 = the oracle);
    3. capped score      C_i = min(100, N_i);
    4. suite score       S = mean of C_i over the tasks that have finished at least one episode so far
       (a single-task env therefore reports its own task's capped normalised score).
    Unlike IMPALA the per-task windows are not cleared after each summary and S is reported as soon as one task has
    results: early in training S averages over the tasks seen so far (the short, easy ones finish first).
Tensorboard (under the policy's summary dir): ``suite/<Task>_score`` (R_i), ``suite/<Task>_normalized`` (N_i,
uncapped), ``suite/score`` (S), ``suite/mean_normalized`` (mean N_i, uncapped), ``suite/tasks_seen``.
S also goes into ``runner.policy_avg_stats["suite_score"][policy_id]`` (``registry.SUITE_SCORE_KEY``, a deque of
length 1 like DMLab's ``dmlab_target_objective``), so ``--pbt_target_objective=suite_score`` ranks PBT policies and
``--save_best_metric=suite_score`` picks the best checkpoint.

Constants (``python -m benchmarks.minigrid_reference_scores --episodes 200``: seeds 0..199 per task, minigrid 3.2.0):

    task               max_steps  RANDOM_SCORES (success)   REFERENCE_SCORES (mean oracle steps)
    Empty-Random-6x6      144       0.2894  (44.0%)             0.9729   (4.3)
    DoorKey-5x5           250       0.0404  (11.0%)             0.9651   (9.7)
    DoorKey-8x8           640       0.0088   (1.5%)             0.9767  (16.6)
    KeyCorridorS3R1       270       0.0102   (4.0%)             0.9509  (14.7)
    KeyCorridorS3R3       270       0.0039   (1.0%)             0.9325  (20.2)
    MultiRoom-N2-S4        40       0.0060   (2.0%)             0.8400   (7.1)
    MultiRoom-N4-S5        80       0.0000   (0.0%)             0.7702  (20.4)
    MemoryS7              245       0.1760  (23.0%)             0.9839   (4.4)
    LavaGapS5             100       0.0358   (7.5%)             0.9453   (6.1)

RANDOM_SCORES: mean return of uniformly random actions over Discrete(7).
REFERENCE_SCORES: mean return of a shortest-path oracle that knows the whole grid (breadth-first search over agent
position, direction, carried object and the objects it moved/doors it opened, with MiniGrid's own action rules;
each plan is replayed in the real env to check it earns exactly the predicted reward). It upper-bounds what any agent
can expect (a real agent sees only 7x7 cells and must explore), so normalised scores near 100 mean near-perfect play.
With 200 episodes the random scores of the rarely-solved tasks are rough (a 1.5% success rate is 3 episodes); they
sit so close to 0 that the error moves a normalised score by well under one point.

Speed (``--speed 2``, one process, random actions, 2-core shared CPU): raw MiniGrid 4.5K-6.3K steps/s per task
(mean 5.3K), this wrapper 4.2K-6.1K (mean 5.0K, ratio 0.94); ``encode_observation`` alone costs ~3 us per step.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import gymnasium as gym
import numpy as np

from sample_factory.algo.utils.context import global_env_registry
from sample_factory.envs.env_utils import register_env

from sf_kickstart.suites.base import TaskFamily, cfg_value, one_hot, task_id_space, with_episode_stat
from sf_kickstart.suites.registry import TASK_ID_KEY, SuiteError
from sf_kickstart.suites.scoring import ScoreTable, TaskReturns, install_suite_score

# ---------------------------------------------------------------------------------------------------------------------
# tasks

#: ordered task list, index == task id: (short name, gymnasium id)
TASKS: List[tuple] = [
    ("Empty-Random-6x6", "MiniGrid-Empty-Random-6x6-v0"),
    ("DoorKey-5x5", "MiniGrid-DoorKey-5x5-v0"),
    ("DoorKey-8x8", "MiniGrid-DoorKey-8x8-v0"),
    ("KeyCorridorS3R1", "MiniGrid-KeyCorridorS3R1-v0"),
    ("KeyCorridorS3R3", "MiniGrid-KeyCorridorS3R3-v0"),
    ("MultiRoom-N2-S4", "MiniGrid-MultiRoom-N2-S4-v0"),
    ("MultiRoom-N4-S5", "MiniGrid-MultiRoom-N4-S5-v1"),  # -v0 is a legacy six-room config in minigrid 3.x
    ("MemoryS7", "MiniGrid-MemoryS7-v0"),
    ("LavaGapS5", "MiniGrid-LavaGapS5-v0"),
]
TASK_NAMES: List[str] = [name for name, _ in TASKS]
GYM_IDS: Dict[str, str] = dict(TASKS)
NUM_TASKS = len(TASKS)

#: hard task -> its easier sibling in the suite (the paper's "3-bot -> 1-bot" transfer)
HARD_SIBLINGS: Dict[str, str] = {
    "DoorKey-8x8": "DoorKey-5x5",
    "KeyCorridorS3R3": "KeyCorridorS3R1",
    "MultiRoom-N4-S5": "MultiRoom-N2-S4",
}

ENV_PREFIX = "minigrid_"
SUITE_ENV = "minigrid_suite"
ENV_NAMES: List[str] = [SUITE_ENV] + [ENV_PREFIX + t for t in TASK_NAMES]

NUM_ACTIONS = 7
VIEW = 7  # MiniGrid's default agent_view_size, identical for every task above
NUM_OBJECTS, NUM_COLORS, NUM_STATES, NUM_DIRS = 11, 6, 3, 4
CELL_SIZE = NUM_OBJECTS + NUM_COLORS + NUM_STATES  # 20
OBS_SIZE = VIEW * VIEW * CELL_SIZE + NUM_DIRS  # 984

# ---------------------------------------------------------------------------------------------------------------------
# constants for the normalised score (see the module docstring for how they were measured)

RANDOM_SCORES: Dict[str, float] = {
    "Empty-Random-6x6": 0.2894,
    "DoorKey-5x5": 0.0404,
    "DoorKey-8x8": 0.0088,
    "KeyCorridorS3R1": 0.0102,
    "KeyCorridorS3R3": 0.0039,
    "MultiRoom-N2-S4": 0.0060,
    "MultiRoom-N4-S5": 0.0000,
    "MemoryS7": 0.1760,
    "LavaGapS5": 0.0358,
}
REFERENCE_SCORES: Dict[str, float] = {
    "Empty-Random-6x6": 0.9729,
    "DoorKey-5x5": 0.9651,
    "DoorKey-8x8": 0.9767,
    "KeyCorridorS3R1": 0.9509,
    "KeyCorridorS3R3": 0.9325,
    "MultiRoom-N2-S4": 0.8400,
    "MultiRoom-N4-S5": 0.7702,
    "MemoryS7": 0.9839,
    "LavaGapS5": 0.9453,
}
assert list(RANDOM_SCORES) == TASK_NAMES and list(REFERENCE_SCORES) == TASK_NAMES


# ---------------------------------------------------------------------------------------------------------------------
# names


def validate_env_name(env_name: str) -> List[str]:
    """Raise SuiteError unless env_name is one of ENV_NAMES; return the tasks the env plays (one, or all)."""
    if env_name == SUITE_ENV:
        return list(TASK_NAMES)
    task = FAMILY.single_task(env_name, TASK_NAMES)
    if task is not None:
        return [task]
    raise SuiteError(f"Unknown MiniGrid env {env_name!r}: expected one of {', '.join(ENV_NAMES)}")


def task_names(env_name: str) -> List[str]:
    """The full ordered task list (index == task id), the same for the suite and every single-task env."""
    validate_env_name(env_name)
    return list(TASK_NAMES)


FAMILY = TaskFamily(ENV_PREFIX, "raw_return", validate_env_name)
task_envs = FAMILY.task_envs  # the tasks an env plays -> ``minigrid_<Task>``
stat_key = FAMILY.stat_key  # a task's raw episode return in info["episode_extra_stats"]
STAT_KEY_TO_TASK: Dict[str, str] = FAMILY.stat_keys(TASK_NAMES)


def check_available(env_name: str) -> None:
    validate_env_name(env_name)
    try:
        import minigrid  # noqa: F401
    except ImportError as e:  # pragma: no cover - minigrid is a hard requirement of the project
        raise SuiteError(f"{env_name!r} needs the minigrid package: pip install minigrid ({e})") from e


# ---------------------------------------------------------------------------------------------------------------------
# observation encoding

# flat index of (i, j, k, value=0) in the one-hot vector; add the value to get the hot index
_CHANNEL_OFFSETS = np.array([0, NUM_OBJECTS, NUM_OBJECTS + NUM_COLORS], dtype=np.intp)
_BASE_INDEX = (np.arange(VIEW * VIEW, dtype=np.intp) * CELL_SIZE).reshape(VIEW, VIEW, 1) + _CHANNEL_OFFSETS
_DIR_OFFSET = VIEW * VIEW * CELL_SIZE


def encode_observation(image: np.ndarray, direction: int) -> np.ndarray:
    """One-hot encode MiniGrid's (7, 7, 3) image and the agent direction into a (984,) uint8 vector."""
    out = np.zeros(OBS_SIZE, dtype=np.uint8)
    out[_BASE_INDEX + image] = 1
    out[_DIR_OFFSET + direction] = 1
    return out


def task_one_hot(task_id: int) -> np.ndarray:
    return one_hot(task_id, NUM_TASKS)


def observation_space() -> gym.spaces.Dict:
    return gym.spaces.Dict(
        {
            "obs": gym.spaces.Box(0, 1, (OBS_SIZE,), dtype=np.uint8),
            TASK_ID_KEY: task_id_space(NUM_TASKS),
        }
    )


# ---------------------------------------------------------------------------------------------------------------------
# env


class MinigridTaskEnv(gym.Env):
    """One MiniGrid task with the suite's shared observation/action spaces and per-task episode stats."""

    metadata = {"render_modes": ["rgb_array", "human"]}

    def __init__(self, task: str, render_mode: Optional[str] = None):
        if task not in GYM_IDS:
            raise SuiteError(f"Unknown MiniGrid task {task!r}: expected one of {', '.join(TASK_NAMES)}")
        import minigrid  # noqa: F401  (registers the MiniGrid-* ids in this process)

        self.task = task
        self.task_id = TASK_NAMES.index(task)
        self.render_mode = render_mode
        self.env = gym.make(GYM_IDS[task], render_mode=render_mode, disable_env_checker=True)
        self._raw = self.env.unwrapped
        img_space = self._raw.observation_space["image"]
        if img_space.shape != (VIEW, VIEW, 3):
            raise SuiteError(f"{task}: expected a {(VIEW, VIEW, 3)} view, got {img_space.shape}")
        if self.env.action_space != gym.spaces.Discrete(NUM_ACTIONS):
            raise SuiteError(f"{task}: expected Discrete({NUM_ACTIONS}) actions, got {self.env.action_space}")

        self.observation_space = observation_space()
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self.max_steps = self._raw.max_steps
        self._task_vec = task_one_hot(self.task_id)
        self._stat_key = stat_key(task)
        self._episode_return = 0.0

    def _obs(self, obs: Dict[str, Any]) -> Dict[str, np.ndarray]:
        return {"obs": encode_observation(obs["image"], obs["direction"]), TASK_ID_KEY: self._task_vec.copy()}

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._episode_return = 0.0
        return self._obs(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._episode_return += float(reward)
        if terminated or truncated:
            info = with_episode_stat(info, self._stat_key, self._episode_return)
        return self._obs(obs), reward, terminated, truncated, info

    def render(self):
        return self.env.render()

    def close(self):
        self.env.close()


def task_for_env(env_name: str, env_config: Optional[Mapping] = None) -> str:
    """The task an env instance plays: fixed for single-task names, env_id % NUM_TASKS for the suite."""
    tasks = validate_env_name(env_name)
    if len(tasks) == 1:
        return tasks[0]
    if env_config is None:
        return TASK_NAMES[0]
    env_id = cfg_value(env_config, "env_id")
    return TASK_NAMES[int(env_id or 0) % NUM_TASKS]


def make_minigrid_env(full_env_name: str, cfg=None, env_config=None, render_mode: Optional[str] = None):
    """Sample Factory env factory (module level: SF pickles the registry into spawned workers)."""
    return MinigridTaskEnv(task_for_env(full_env_name, env_config), render_mode=render_mode)


def register(env_name: str) -> None:
    """Register minigrid_suite and every minigrid_<Task> with Sample Factory; SuiteError for an unknown env_name."""
    validate_env_name(env_name)
    registry = global_env_registry()
    for name in ENV_NAMES:
        if registry.get(name) is not make_minigrid_env:  # re-registering only logs a warning in SF
            register_env(name, make_minigrid_env)


# ---------------------------------------------------------------------------------------------------------------------
# scores


SCORES = ScoreTable(RANDOM_SCORES, REFERENCE_SCORES)


def normalized_score(
    task: str,
    mean_return: float,
    random_scores: Optional[Mapping[str, float]] = None,
    reference_scores: Optional[Mapping[str, float]] = None,
) -> float:
    """100 * (R - random) / (reference - random); 0 = random actions, 100 = the oracle. Uncapped."""
    return _table(random_scores, reference_scores).normalized(task, mean_return)


def capped_mean_normalized_score(
    mean_returns: Mapping[str, float],
    random_scores: Optional[Mapping[str, float]] = None,
    reference_scores: Optional[Mapping[str, float]] = None,
    cap: float = 100.0,
) -> float:
    """Suite score: mean over the given tasks of min(cap, normalised score of the task's mean return)."""
    return _table(random_scores, reference_scores).capped_mean(mean_returns, cap)


def _table(random_scores, reference_scores) -> ScoreTable:
    if random_scores is None and reference_scores is None:
        return SCORES
    return ScoreTable(RANDOM_SCORES if random_scores is None else random_scores,
                      REFERENCE_SCORES if reference_scores is None else reference_scores)


def install(cfg, runner) -> TaskReturns:
    """Register the per-task episodic-stats handler and the suite/* summaries on a Sample Factory runner."""
    validate_env_name(cfg.env)
    return install_suite_score(cfg, runner, TASK_NAMES, STAT_KEY_TO_TASK, SCORES)
