"""What evaluate's `play` hands `env.step`, without training: `env_action` turns one env's flat action row (Sample
Factory's layout: one column per Discrete part, `shape` columns per Box part, in order) into an int for a Discrete, a
float32 array for a Box (a Box(1,) stays an array), a tuple of those for a Tuple, nested ones part by part; the same
split as SF's `preprocess_actions`; `greedy_actions` gives a Tuple's argmax as one flat row per env (SF's own
concatenates along the batch); and `play` on a toy env with a Tuple(Discrete(3), Box(2)) action space, greedy and
sampled, steps it on (int, float32 array) actions."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from sample_factory.algo.sampling.batched_sampling import preprocess_actions
from sample_factory.algo.utils.action_distributions import get_action_distribution
from sample_factory.utils.attr_dict import AttrDict

from sf_kickstart.agents.evaluate import EvaluationError, env_action, greedy_actions, play

MIXED = spaces.Tuple([spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
NESTED = spaces.Tuple([spaces.Box(-1, 1, (1,)), spaces.Tuple([spaces.Discrete(4), spaces.Box(-1, 1, (2,))]),
                       spaces.Discrete(2)])


# ------------------------------------------------------------------------------------------------ by hand
def test_a_discrete_action_is_an_int():
    for row in (np.array(2), np.array([2]), np.array([2.0], np.float32)):  # greedy (0-d), sampled (1,), a float
        a = env_action(spaces.Discrete(5), row)
        assert a == 2 and type(a) is int


@pytest.mark.parametrize("n", [1, 3])
def test_a_box_action_is_a_float32_array_of_its_shape(n):
    row = np.arange(n, dtype=np.float64) / 4
    a = env_action(spaces.Box(-1, 1, (n,)), row)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (n,)  # a Box(1,) is no scalar
    assert np.array_equal(a, row.astype(np.float32))


def test_a_tuple_action_is_a_tuple_of_its_parts():
    a = env_action(MIXED, np.array([2.0, 0.5, -0.25], np.float32))
    assert isinstance(a, tuple) and len(a) == 2
    assert a[0] == 2 and type(a[0]) is int
    assert a[1].dtype == np.float32 and a[1].shape == (2,) and np.array_equal(a[1], [0.5, -0.25])
    assert MIXED.contains(a)


def test_a_nested_tuple_is_split_part_by_part_in_order():
    # columns: Box(1) | Discrete(4) | Box(2) | Discrete(2)
    box1, (disc4, box2), disc2 = a = env_action(NESTED, np.array([0.75, 3.0, -0.5, 0.125, 1.0], np.float32))
    assert np.array_equal(box1, [0.75]) and box1.dtype == np.float32 and box1.shape == (1,)
    assert disc4 == 3 and type(disc4) is int
    assert np.array_equal(box2, [-0.5, 0.125]) and box2.dtype == np.float32
    assert disc2 == 1 and type(disc2) is int
    assert NESTED.contains(a)


def test_the_split_is_sample_factorys():
    """The same parts as SF's `preprocess_actions` (what a training rollout steps the env on) for a batch of rows."""
    rows = torch.tensor([[2.0, 0.5, -0.25], [0.0, -1.0, 1.0]])
    info = AttrDict(all_discrete=False, action_space=MIXED, action_splits=[1, 2], gpu_actions=False)
    discrete, box = preprocess_actions(info, rows)
    for i in range(len(rows)):
        a = env_action(MIXED, rows[i].numpy())
        assert a[0] == int(discrete[i]) and np.array_equal(a[1], box[i])


def test_an_unsupported_space_is_an_evaluation_error():
    with pytest.raises(EvaluationError, match="not supported"):
        env_action(spaces.MultiBinary(3), np.zeros(3))


def test_greedy_actions_of_a_tuple_are_one_flat_row_per_env():
    torch.manual_seed(0)
    logits = torch.randn(4, 3 + 2 * 2)  # [3 logits | 2 means | 2 log-stds]
    actions = greedy_actions(get_action_distribution(MIXED, logits))
    assert actions.shape == (4, 3) and actions.dtype == torch.float32
    assert torch.equal(actions[:, 0], logits[:, :3].argmax(-1).float()) and torch.equal(actions[:, 1:], logits[:, 3:5])
    box = get_action_distribution(spaces.Box(-1, 1, (2,)), logits[:, 3:])
    assert torch.equal(greedy_actions(box), logits[:, 3:5])  # not a Tuple: SF's argmax_actions, unchanged
    assert torch.equal(greedy_actions(get_action_distribution(spaces.Discrete(3), logits[:, :3])), logits[:, :3].argmax(-1))


# ------------------------------------------------------------------------------------------------ play
TOY_ENV = "sf_kickstart_test_tuple_actions"


class TupleActionEnv(gym.Env):
    """Episodes of 3 steps; keeps every action it is stepped on in `log`."""

    observation_space = spaces.Box(-1, 1, (4,), np.float32)
    action_space = MIXED

    def __init__(self, log):
        self.log, self.t = log, 0

    def reset(self, seed=None, options=None):
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.log.append(action)
        self.t += 1
        return np.full(4, self.t / 4, np.float32), 1.0, self.t >= 3, False, {}


def _toy_agent():
    from sample_factory.cfg.arguments import default_cfg
    from sample_factory.model.actor_critic import create_actor_critic
    from sample_factory.model.model_utils import get_rnn_size

    cfg = default_cfg(env=TOY_ENV)
    cfg.use_rnn, cfg.encoder_mlp_layers, cfg.device = False, [8], "cpu"
    model = create_actor_critic(cfg, spaces.Dict({"obs": TupleActionEnv.observation_space}), MIXED).eval()
    return SimpleNamespace(model=model, device=torch.device("cpu"), input_keys=["obs"], rnn_size=get_rnn_size(cfg),
                           view=lambda obs: obs)


@pytest.mark.parametrize("greedy", [True, False])
def test_play_steps_a_tuple_env_on_int_and_float32_array_actions(greedy):
    from sample_factory.algo.utils.context import global_env_registry
    from sample_factory.envs.env_utils import register_env

    log = []
    register_env(TOY_ENV, lambda *args, **kwargs: TupleActionEnv(log))
    try:
        returns = play(_toy_agent(), AttrDict(env=TOY_ENV), {"toy": TOY_ENV}, episodes=3, greedy=greedy,
                       envs_per_task=2)
    finally:  # SF's registry is pickled into every spawned env probe: a local lambda left in it breaks later tests
        global_env_registry().pop(TOY_ENV, None)
    assert returns == {"toy": [3.0, 3.0, 3.0]} and len(log) == 9
    for action in log:
        assert isinstance(action, tuple) and len(action) == 2
        assert type(action[0]) is int and 0 <= action[0] < 3
        assert isinstance(action[1], np.ndarray) and action[1].dtype == np.float32 and action[1].shape == (2,)
