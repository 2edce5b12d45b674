"""The embedded MiniGrid suite: names, spaces, encoding, per-task stats and the suite score."""

import pickle
from collections import deque

import numpy as np
import pytest
from sample_factory.algo.runners.runner import Runner
from sample_factory.algo.utils.context import global_env_registry
from sample_factory.algo.utils.misc import EPISODIC, POLICY_ID_KEY
from sample_factory.envs.create_env import create_env
from sample_factory.utils.attr_dict import AttrDict

from sf_kickstart.suites import minigrid as mg
from sf_kickstart.suites import registry
from sf_kickstart.suites.registry import SUITE_SCORE_KEY, TASK_ID_KEY, SuiteError

REQUIRED = ["DoorKey-5x5", "DoorKey-8x8", "KeyCorridorS3R1", "KeyCorridorS3R3", "MultiRoom-N2-S4",
            "MultiRoom-N4-S5", "MemoryS7"]


# ---------------------------------------------------------------------------------------------------------- names


def test_task_list_and_env_names():
    names = mg.task_names("minigrid_suite")
    assert names == mg.TASK_NAMES and len(names) == mg.NUM_TASKS >= 9
    assert all(t in names for t in REQUIRED)
    for hard, easy in mg.HARD_SIBLINGS.items():
        assert hard in names and easy in names
    # single-task envs list the full suite too (task id space is shared)
    assert mg.task_names("minigrid_DoorKey-8x8") == names
    assert registry.default_task_names("minigrid_MemoryS7") == names
    assert mg.ENV_NAMES == ["minigrid_suite"] + [f"minigrid_{t}" for t in names]
    assert mg.validate_env_name("minigrid_DoorKey-8x8") == ["DoorKey-8x8"]
    assert mg.validate_env_name("minigrid_suite") == names
    # the legacy N4-S5-v0 id has six rooms in minigrid 3.x
    assert mg.GYM_IDS["MultiRoom-N4-S5"].endswith("-v1")


@pytest.mark.parametrize("bad", ["minigrid_Nope", "minigrid_suit", "minigrid_", "minigrid_doorkey-8x8", "DoorKey-8x8"])
def test_unknown_names_raise_suite_error(bad):
    for fn in (mg.validate_env_name, mg.register, mg.task_names, mg.check_available):
        with pytest.raises(SuiteError, match="minigrid_DoorKey-8x8") as e:
            fn(bad)
        assert "minigrid_suite" in str(e.value)
    with pytest.raises(SuiteError):
        mg.make_minigrid_env(bad, None, None)


def test_registry_prepare_env_rejects_unknown_task_before_workers():
    with pytest.raises(SuiteError, match="minigrid_suite"):
        registry.prepare_env("minigrid_Nope")


def test_register_all_names_with_sample_factory():
    mg.register("minigrid_DoorKey-8x8")
    reg = global_env_registry()
    for name in mg.ENV_NAMES:
        assert reg[name] is mg.make_minigrid_env
    # SF spawns workers and pickles the registry: the factory must be a module-level callable
    assert pickle.loads(pickle.dumps(reg["minigrid_suite"])) is mg.make_minigrid_env
    env = create_env("minigrid_KeyCorridorS3R3", cfg=AttrDict(), env_config=AttrDict(worker_index=0, vector_index=3,
                                                                                      env_id=3))
    assert env.task == "KeyCorridorS3R3"  # single-task names ignore env_id
    env.close()


# ---------------------------------------------------------------------------------------------------------- spaces


def test_spaces_identical_across_tasks_and_suite():
    envs = [mg.make_minigrid_env(name, None, None) for name in mg.ENV_NAMES]
    obs_space, act_space = envs[0].observation_space, envs[0].action_space
    assert set(obs_space.spaces) == {"obs", TASK_ID_KEY}
    assert obs_space["obs"].shape == (984,) and obs_space["obs"].dtype == np.uint8
    assert obs_space[TASK_ID_KEY].shape == (mg.NUM_TASKS,) and obs_space[TASK_ID_KEY].dtype == np.float32
    assert act_space.n == 7
    for env in envs:
        assert env.observation_space == obs_space
        assert env.action_space == act_space
        obs, _ = env.reset(seed=0)
        assert obs_space.contains(obs), env.task
        obs, *_ = env.step(env.action_space.sample())
        assert obs_space.contains(obs), env.task
        env.close()


def test_suite_task_id_from_env_id():
    for env_id in range(2 * mg.NUM_TASKS + 1):
        cfg = AttrDict(worker_index=env_id // 4, vector_index=env_id % 4, env_id=env_id)
        env = mg.make_minigrid_env("minigrid_suite", None, cfg)
        expected = env_id % mg.NUM_TASKS
        assert env.task == mg.TASK_NAMES[expected]
        obs, _ = env.reset(seed=env_id)
        onehot = np.zeros(mg.NUM_TASKS, np.float32)
        onehot[expected] = 1
        np.testing.assert_array_equal(obs[TASK_ID_KEY], onehot)
        obs, *_ = env.step(0)
        np.testing.assert_array_equal(obs[TASK_ID_KEY], onehot)
        env.close()
    assert mg.make_minigrid_env("minigrid_suite", None, None).task == mg.TASK_NAMES[0]
    env = mg.make_minigrid_env("minigrid_DoorKey-8x8", None, None)
    assert env.reset(seed=0)[0][TASK_ID_KEY].argmax() == mg.TASK_NAMES.index("DoorKey-8x8")


# ---------------------------------------------------------------------------------------------------------- encoding


def _hand_encoding(image, direction):
    v = np.zeros(984, dtype=np.uint8)
    for i in range(7):
        for j in range(7):
            obj, color, state = (int(x) for x in image[i, j])
            cell = 20 * (7 * i + j)
            v[cell + obj] = 1
            v[cell + 11 + color] = 1
            v[cell + 17 + state] = 1
    v[980 + direction] = 1
    return v


def test_encoding_matches_hand_made_one_hot_of_real_observation():
    env = mg.MinigridTaskEnv("DoorKey-5x5")
    obs, _ = env.reset(seed=3)
    raw = env._raw.gen_obs()
    # a real observation with walls, a key, a door and unseen cells, so several value slots are exercised
    assert len(np.unique(raw["image"][..., 0])) >= 3
    np.testing.assert_array_equal(obs["obs"], _hand_encoding(raw["image"], raw["direction"]))
    for a in [1, 2, 2, 0, 5, 3]:  # turn, move, toggle, pickup: new views
        obs, *_ = env.step(a)
        raw = env._raw.gen_obs()
        np.testing.assert_array_equal(obs["obs"], _hand_encoding(raw["image"], raw["direction"]))


def test_encoding_stays_one_hot_in_random_rollouts():
    rng = np.random.default_rng(0)
    for task in mg.TASK_NAMES:
        env = mg.MinigridTaskEnv(task)
        obs, _ = env.reset(seed=1)
        for _ in range(60):
            o = obs["obs"]
            cells = o[:980].reshape(49, 20)
            # exactly one hot per field in every cell: no value spills into a neighbour's slots
            assert (cells[:, :11].sum(1) == 1).all() and (cells[:, 11:17].sum(1) == 1).all()
            assert (cells[:, 17:].sum(1) == 1).all() and o[980:].sum() == 1, task
            obs, _, term, trunc, _ = env.step(int(rng.integers(7)))
            if term or trunc:
                obs, _ = env.reset()


# ---------------------------------------------------------------------------------------------------------- stats


def test_episode_extra_stats_on_truncation():
    env = mg.make_minigrid_env("minigrid_suite", None, AttrDict(env_id=5 + mg.NUM_TASKS))  # MultiRoom-N2-S4
    assert env.task == "MultiRoom-N2-S4"
    env.reset(seed=0)
    total, steps = 0.0, 0
    while True:
        _, r, term, trunc, info = env.step(0)  # turning in place never reaches the goal
        total += r
        steps += 1
        if term or trunc:
            break
        assert "episode_extra_stats" not in info
    assert trunc and steps == env.max_steps == 40
    assert info["episode_extra_stats"] == {"minigrid_MultiRoom-N2-S4_raw_return": 0.0}


def test_episode_extra_stats_on_success_carries_raw_return_and_resets():
    env = mg.make_minigrid_env("minigrid_Empty-Random-6x6", None, None)
    for episode in range(2):
        env.reset(seed=episode)
        env.step(0)  # one wasted step
        u = env._raw
        u.agent_pos, u.agent_dir = (3, 4), 0  # just left of the goal at (4, 4), facing it
        _, r, term, trunc, info = env.step(2)
        assert term and not trunc
        expected = 1 - 0.9 * 2 / 144
        assert r == pytest.approx(expected)
        assert info["episode_extra_stats"] == {mg.stat_key("Empty-Random-6x6"): pytest.approx(expected)}


# ---------------------------------------------------------------------------------------------------------- scores


def test_normalized_and_capped_scores_hand_computed():
    rnd = {"A": 0.1, "B": 0.0, "C": 0.2}
    ref = {"A": 0.9, "B": 0.5, "C": 0.6}
    assert mg.normalized_score("A", 0.5, rnd, ref) == pytest.approx(50.0)
    assert mg.normalized_score("B", 0.75, rnd, ref) == pytest.approx(150.0)  # uncapped
    assert mg.normalized_score("C", 0.0, rnd, ref) == pytest.approx(-50.0)
    # (50 + min(100, 150) - 50) / 3
    assert mg.capped_mean_normalized_score({"A": 0.5, "B": 0.75, "C": 0.0}, rnd, ref) == pytest.approx(100 / 3)
    assert mg.capped_mean_normalized_score({"B": 0.75}, rnd, ref) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        mg.capped_mean_normalized_score({}, rnd, ref)
    # the real constants: random -> 0, reference -> 100, for every task
    for t in mg.TASK_NAMES:
        assert mg.RANDOM_SCORES[t] < mg.REFERENCE_SCORES[t] <= 1.0
        assert mg.normalized_score(t, mg.RANDOM_SCORES[t]) == pytest.approx(0.0)
        assert mg.normalized_score(t, mg.REFERENCE_SCORES[t]) == pytest.approx(100.0)


class FakeWriter:
    def __init__(self):
        self.scalars = {}

    def add_scalar(self, tag, value, step):
        self.scalars[tag] = (float(value), step)


class FakeRunner:
    def __init__(self, env, num_policies=2, stats_avg=3):
        self.cfg = AttrDict(env=env, num_policies=num_policies, stats_avg=stats_avg, batched_sampling=False)
        self.policy_avg_stats = {}
        self.episodic_handlers = []
        self.observers = []

    def register_episodic_stats_handler(self, fn):
        self.episodic_handlers.append(fn)

    def register_observer(self, obs):
        self.observers.append(obs)

    def episode(self, policy_id, info):
        """What SF's non-batched sampler sends at an episode end, through SF's own handler and ours."""
        msg = {EPISODIC: dict(reward=0.0, len=1, episode_extra_stats=info.get("episode_extra_stats", {})),
               POLICY_ID_KEY: policy_id}
        Runner._episodic_stats_handler(self, msg, policy_id)
        for fn in self.episodic_handlers:
            fn(self, msg, policy_id)

    def summaries(self, policy_id, env_steps=1000):
        writer = FakeWriter()
        for o in self.observers:
            o.extra_summaries(self, policy_id, writer, env_steps)
        return writer.scalars


def _info(task, ret):
    return {"episode_extra_stats": {mg.stat_key(task): ret}}


def test_install_handler_and_summaries_on_fake_runner():
    runner = FakeRunner("minigrid_suite", num_policies=2, stats_avg=3)
    mg.install(runner.cfg, runner)
    assert len(runner.episodic_handlers) == 1 and len(runner.observers) == 1
    assert runner.summaries(0) == {} and SUITE_SCORE_KEY not in runner.policy_avg_stats  # nothing seen yet

    rnd, ref = mg.RANDOM_SCORES, mg.REFERENCE_SCORES
    # DoorKey-8x8: 4 episodes, window of 3 keeps the last three: mean = reference -> 100
    for r in [0.0, ref["DoorKey-8x8"] - 0.1, ref["DoorKey-8x8"], ref["DoorKey-8x8"] + 0.1]:
        runner.episode(0, _info("DoorKey-8x8", r))
    # MemoryS7: above the reference -> normalised > 100, capped at 100
    runner.episode(0, _info("MemoryS7", 1.0))
    # LavaGapS5: halfway between random and reference -> 50
    runner.episode(0, _info("LavaGapS5", (rnd["LavaGapS5"] + ref["LavaGapS5"]) / 2))
    # MultiRoom-N2-S4 at the random score -> 0
    runner.episode(0, _info("MultiRoom-N2-S4", rnd["MultiRoom-N2-S4"]))
    # other policy, unrelated keys: ignored by policy 0's numbers
    runner.episode(1, _info("DoorKey-5x5", 0.0))
    runner.episode(0, {"episode_extra_stats": {"something_else": 5.0}})

    s = runner.summaries(0, env_steps=1234)
    assert s["suite/DoorKey-8x8_score"] == (pytest.approx(ref["DoorKey-8x8"]), 1234)
    assert s["suite/DoorKey-8x8_normalized"][0] == pytest.approx(100.0)
    mem_norm = 100 * (1.0 - rnd["MemoryS7"]) / (ref["MemoryS7"] - rnd["MemoryS7"])
    assert mem_norm > 100 and s["suite/MemoryS7_normalized"][0] == pytest.approx(mem_norm)
    assert s["suite/LavaGapS5_normalized"][0] == pytest.approx(50.0)
    assert s["suite/MultiRoom-N2-S4_normalized"][0] == pytest.approx(0.0)
    expected = (100 + 100 + 50 + 0) / 4  # capped mean over the 4 tasks seen by policy 0
    assert s["suite/score"][0] == pytest.approx(expected)
    assert s["suite/mean_normalized"][0] == pytest.approx((100 + mem_norm + 50 + 0) / 4)
    assert s["suite/tasks_seen"][0] == 4
    assert "suite/DoorKey-5x5_score" not in s and "suite/KeyCorridorS3R3_score" not in s

    # PBT objective: one deque per policy, policy 0 filled, policy 1 untouched until its own summaries
    stats = runner.policy_avg_stats[SUITE_SCORE_KEY]
    assert len(stats) == 2 and all(isinstance(d, deque) for d in stats)
    assert list(stats[0]) == [pytest.approx(expected)] and len(stats[1]) == 0

    s1 = runner.summaries(1)
    assert s1["suite/DoorKey-5x5_normalized"][0] == pytest.approx(
        100 * (0.0 - rnd["DoorKey-5x5"]) / (ref["DoorKey-5x5"] - rnd["DoorKey-5x5"]))
    assert stats[1][-1] == pytest.approx(s1["suite/score"][0]) and "suite/DoorKey-8x8_score" not in s1

    # SF's own handler averages the same key for its policy_stats/ summaries
    assert list(runner.policy_avg_stats[mg.stat_key("MemoryS7")][0]) == [1.0]


def test_single_task_env_reports_its_task_from_real_episodes():
    runner = FakeRunner("minigrid_DoorKey-5x5", num_policies=1, stats_avg=10)
    mg.install(runner.cfg, runner)
    env = mg.make_minigrid_env("minigrid_DoorKey-5x5", None, None)
    env.reset(seed=0)
    while True:
        _, _, term, trunc, info = env.step(0)
        if term or trunc:
            break
    runner.episode(0, info)
    s = runner.summaries(0)
    assert s["suite/DoorKey-5x5_score"][0] == 0.0
    norm = mg.normalized_score("DoorKey-5x5", 0.0)
    assert norm < 0 and s["suite/score"][0] == pytest.approx(norm)
    assert runner.policy_avg_stats[SUITE_SCORE_KEY][0][-1] == pytest.approx(norm)


def test_install_rejects_unknown_env():
    runner = FakeRunner("minigrid_Nope")
    with pytest.raises(SuiteError):
        mg.install(runner.cfg, runner)
