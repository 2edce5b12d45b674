"""The external env families: gymnasium ids, Atari (single games and the multi-game suite), DMLab-30 and ViZDoom.

Atari runs for real (ale-py 0.10.2 ships the ROMs). DeepMind Lab and ViZDoom are not installable here: their tests
check the clear install errors and everything that works without the simulator; tests that need one are skipped.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections import deque

import gymnasium as gym
import numpy as np
import pytest

from sample_factory.algo.utils.make_env import make_env_func_non_batched
from sample_factory.algo.utils.misc import EPISODIC
from sample_factory.cfg.arguments import parse_full_cfg, parse_sf_args
from sample_factory.utils.attr_dict import AttrDict
from sample_factory.utils.utils import is_module_available

from sf_kickstart.paths import CFG_DIR, REPO_ROOT
from sf_kickstart.suites import atari, dmlab30, registry
from sf_kickstart.suites import gym as gym_suite
from sf_kickstart.suites import vizdoom
from sf_kickstart.suites.registry import SUITE_SCORE_KEY, TASK_ID_KEY, SuiteError

DMLAB_AVAILABLE = is_module_available("deepmind_lab")
VIZDOOM_AVAILABLE = is_module_available("vizdoom")
NO_DMLAB = "deepmind_lab is not installed (built from source only: https://github.com/deepmind/lab)"
NO_VIZDOOM = "vizdoom is not installed (pip install vizdoom==1.3.2)"


def make_cfg(env, *extra, suite=None):
    """Parse a full SF config the way the entry point does: SF flags, then the suite's flags and default overrides."""
    suite = suite or registry.suite_for_env(env)
    argv = [f"--env={env}", "--experiment=test_suites_external", *extra]
    parser, _ = parse_sf_args(argv)
    suite.add_args(parser)
    suite.override_defaults(env, parser)
    return parse_full_cfg(parser, argv)


class FakeWriter:
    def __init__(self):
        self.scalars = {}

    def add_scalar(self, tag, value, step):
        self.scalars[tag] = float(value)


class FakeRunner:
    """The part of sample_factory's Runner that suites touch in install() and in the stats callbacks."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.policy_avg_stats = {}
        self.handlers = []
        self.observers = []

    def register_episodic_stats_handler(self, fn):
        self.handlers.append(fn)

    def register_observer(self, observer):
        self.observers.append(observer)

    def episode(self, policy_id, extra_stats):
        msg = {EPISODIC: {"reward": 0.0, "len": 1, "episode_extra_stats": extra_stats}}
        for fn in self.handlers:
            fn(self, msg, policy_id)

    def summaries(self, policy_id, env_steps=1000):
        writer = FakeWriter()
        for observer in self.observers:
            observer.extra_summaries(self, policy_id, writer, env_steps)
        return writer


# ---------------------------------------------------------------------------------------------------------------------
# gymnasium ids


def test_gym_id_detection():
    assert gym_suite.is_gym_id("CartPole-v1")
    assert gym_suite.is_gym_id("ALE/Pong-v5")  # registered by importing ale_py on demand
    assert not gym_suite.is_gym_id("NoSuchEnv-v0")
    assert not gym_suite.is_gym_id("minigrid_suite")
    assert not gym_suite.is_gym_id("no_such_module_xyz:CartPole-v1")
    assert registry.suite_for_env("CartPole-v1").name == "gym"
    with pytest.raises(SuiteError, match="CartPole-v1"):
        registry.suite_for_env("NoSuchEnv-v0")
    with pytest.raises(SuiteError, match="not a registered gymnasium id"):
        gym_suite.check_available("NoSuchEnv-v0")


def test_gym_registration_makes_env_through_sf():
    suite = registry.prepare_env("CartPole-v1")
    cfg = make_cfg("CartPole-v1", suite=suite)
    env = make_env_func_non_batched(cfg, AttrDict(worker_index=0, vector_index=0, env_id=0))
    try:
        obs, _ = env.reset(seed=0)
        assert isinstance(env.observation_space, gym.spaces.Dict)  # SF wrapped the Box into {"obs": ...}
        assert obs[0]["obs"].shape == (4,)
        assert env.action_space == gym.spaces.Discrete(2)
        obs, rew, terminated, truncated, infos = env.step([0])
        assert rew[0] == 1.0 and obs[0]["obs"].shape == (4,)
    finally:
        env.close()
    assert suite.task_names("CartPole-v1") == ["CartPole-v1"]


# ---------------------------------------------------------------------------------------------------------------------
# Atari


def test_atari_score_table_covers_sf_games():
    assert len(atari.ATARI_57) == 57
    assert list(atari.RANDOM_SCORES) == atari.ATARI_57 == list(atari.HUMAN_SCORES)
    assert all(atari.HUMAN_SCORES[g] > atari.RANDOM_SCORES[g] for g in atari.ATARI_57)
    assert set(atari.DEFAULT_SUITE_GAMES) <= set(atari.ATARI_57)


def test_atari_names():
    assert atari.task_names("atari_suite") == ["breakout", "pong", "spaceinvaders", "qbert", "seaquest"]
    assert atari.task_names("atari_57") == atari.ATARI_57
    assert atari.task_names("atari_suite_pong+breakout") == ["pong", "breakout"]
    assert atari.task_names("atari_breakout") == ["breakout"]
    assert registry.suite_for_env("atari_suite").name == "atari"
    for bad in ("atari_nosuchgame", "atari_suite_pong+nosuchgame", "atari_suite_pong+pong"):
        with pytest.raises(SuiteError):
            atari.validate_env_name(bad)


def test_atari_single_game_steps_in_process():
    suite = registry.prepare_env("atari_breakout")
    cfg = make_cfg("atari_breakout", suite=suite)
    env = make_env_func_non_batched(cfg, AttrDict(worker_index=0, vector_index=0, env_id=0))
    try:
        obs, _ = env.reset(seed=0)
        assert env.action_space == gym.spaces.Discrete(4)  # SF's minimal action set: teachers from plain SF match
        assert set(obs[0]) == {"obs"}
        assert obs[0]["obs"].shape == (4, 84, 84) and obs[0]["obs"].dtype == np.uint8
        for t in range(50):
            obs, rew, terminated, truncated, infos = env.step([t % 4])
        assert obs[0]["obs"].shape == (4, 84, 84)
    finally:
        env.close()


def test_atari_suite_shares_spaces_and_one_hot_task_id():
    suite = registry.prepare_env("atari_suite")
    cfg = make_cfg("atari_suite", suite=suite)
    assert cfg.normalize_input_keys == ["obs"]  # the one-hot is not normalised
    games = suite.task_names("atari_suite")
    spaces, task_vectors = [], []
    for env_id in range(len(games)):
        env = make_env_func_non_batched(cfg, AttrDict(worker_index=0, vector_index=env_id, env_id=env_id))
        try:
            assert env.unwrapped.spec.kwargs["game"].replace("_", "") == games[env_id]  # ALE: space_invaders
            obs, _ = env.reset(seed=env_id)
            assert env.action_space == gym.spaces.Discrete(18)
            task = obs[0][TASK_ID_KEY]
            assert task.dtype == np.float32 and task.sum() == 1.0 and int(task.argmax()) == env_id
            assert obs[0]["obs"].shape == (4, 84, 84)
            obs, *_ = env.step([17])  # DOWNLEFTFIRE exists in every game of the suite
            assert np.array_equal(obs[0][TASK_ID_KEY], task)
            spaces.append(env.observation_space)
            task_vectors.append(task)
        finally:
            env.close()
    assert all(s == spaces[0] for s in spaces)
    assert spaces[0][TASK_ID_KEY] == gym.spaces.Box(0.0, 1.0, (5,), dtype=np.float32)
    assert len({v.tobytes() for v in task_vectors}) == len(games)
    # game 0 without an env_config; env_id wraps around the game list
    assert atari.game_for_env("atari_suite", cfg, None) == "breakout"
    assert atari.game_for_env("atari_suite", cfg, AttrDict(env_id=7)) == "spaceinvaders"


def test_atari_suite_task_pins_the_game():
    cfg = make_cfg("atari_suite", "--atari_suite_task=qbert")
    env = atari.make_atari_suite_env("atari_suite", cfg, AttrDict(worker_index=0, vector_index=0, env_id=0))
    try:
        obs, _ = env.reset(seed=0)
        assert int(obs[TASK_ID_KEY].argmax()) == 3 and env.action_space.n == 18
    finally:
        env.close()
    with pytest.raises(SuiteError, match="not a game of"):
        atari.game_for_env("atari_suite", AttrDict(atari_suite_task="alien"), None)


def test_atari_full_action_set_for_a_game_with_fewer_legal_actions():
    # ALE's legal set for Skiing has 9 actions even with full_action_space=True: a FIRE variant maps to its move
    cfg = AttrDict(env_frameskip=4, env_framestack=4, atari_suite_task=None)
    env = atari.make_atari_suite_env("atari_suite_skiing+pong", cfg, AttrDict(env_id=0))
    try:
        assert env.action_space == gym.spaces.Discrete(18)
        inner = env
        while not isinstance(inner, atari.FullActionSet):
            inner = inner.env
        meanings = inner.unwrapped.get_action_meanings()
        assert meanings[inner.action(atari.FULL_ACTION_MEANINGS.index("UPFIRE"))] == "UP"
        assert meanings[inner.action(atari.FULL_ACTION_MEANINGS.index("FIRE"))] == "NOOP"
        assert meanings[inner.action(atari.FULL_ACTION_MEANINGS.index("DOWNLEFT"))] == "DOWNLEFT"
        env.reset(seed=0)
        env.step(17)
    finally:
        env.close()


def test_atari_per_game_score_only_at_game_over():
    cfg = AttrDict(env_frameskip=4, env_framestack=4, atari_suite_task=None)
    env = atari.make_atari_suite_env("atari_suite", cfg, AttrDict(env_id=0))  # breakout: 5 lives
    rng = np.random.default_rng(0)
    try:
        env.reset(seed=0)
        life_losses, stats = 0, None
        for _ in range(5000):
            obs, reward, terminated, truncated, info = env.step(int(rng.integers(18)))
            if "episode_extra_stats" in info:
                stats = (info["episode_extra_stats"], info["episode"])
                break
            if terminated or truncated:
                life_losses += 1
                env.reset()
        assert stats is not None, "breakout did not end within 5000 random steps"
        extra, episode = stats
        assert set(extra) == {"atari_breakout_raw_score"}
        assert extra["atari_breakout_raw_score"] == pytest.approx(float(episode["r"][0]))  # raw, unclipped, all lives
        assert life_losses >= 1  # EpisodicLife ended earlier episodes without reporting a game score
    finally:
        env.close()


def test_atari_factory_raises_a_clear_error_without_ale_py(monkeypatch):
    monkeypatch.setitem(sys.modules, "ale_py", None)  # `import ale_py` now raises ImportError
    cfg = AttrDict(env_frameskip=4, env_framestack=4, atari_suite_task=None)
    with pytest.raises(SuiteError, match="pip install ale-py"):
        atari.make_atari_suite_env("atari_suite", cfg, AttrDict(env_id=0))
    with pytest.raises(SuiteError, match="pip install ale-py"):
        atari.make_atari_game_env("atari_pong", cfg, AttrDict(env_id=0))


def test_atari_human_normalised_scores_by_hand():
    assert atari.normalized_score("breakout", 30.5) == pytest.approx(100.0)
    assert atari.normalized_score("breakout", 1.7) == pytest.approx(0.0)
    assert atari.normalized_score("pong", -3.05) == pytest.approx(50.0)  # (-3.05 + 20.7) / (14.6 + 20.7)
    assert atari.normalized_score("breakout", 59.3) == pytest.approx(200.0)  # (59.3 - 1.7) / 28.8
    # capped: breakout 200 -> 100, pong 50 -> (100 + 50) / 2
    assert atari.capped_mean_normalized_score({"breakout": 59.3, "pong": -3.05}) == pytest.approx(75.0)


def test_atari_install_writes_suite_summaries_and_pbt_objective():
    cfg = AttrDict(
        env="atari_suite", num_policies=2, stats_avg=100, batched_sampling=False, num_workers=10,
        num_envs_per_worker=1, atari_suite_task=None,
    )  # fmt: skip
    runner = FakeRunner(cfg)
    atari.install(cfg, runner)
    assert len(runner.handlers) == 1 and len(runner.observers) == 1
    assert runner.summaries(0).scalars == {}  # nothing before the first game ends

    runner.episode(0, {"atari_breakout_raw_score": 30.5})
    runner.episode(0, {"atari_breakout_raw_score": 59.3})  # breakout mean 44.9 -> 150 %, capped at 100
    runner.episode(0, {"atari_pong_raw_score": -3.05})  # 50 %
    runner.episode(0, {"atari_alien_raw_score": 1e6})  # not a game of this suite: ignored
    runner.episode(1, {"atari_pong_raw_score": 14.6})  # another policy: 100 %

    s = runner.summaries(0).scalars
    assert s["suite/breakout_score"] == pytest.approx(44.9)
    assert s["suite/breakout_normalized"] == pytest.approx(150.0)
    assert s["suite/pong_normalized"] == pytest.approx(50.0)
    assert s["suite/score"] == pytest.approx(75.0)
    assert s["suite/games_seen"] == 2
    assert not any("alien" in k for k in s)
    stat = runner.policy_avg_stats[SUITE_SCORE_KEY]
    assert isinstance(stat[0], deque) and len(stat) == 2
    assert stat[0][-1] == pytest.approx(75.0)
    assert runner.summaries(1).scalars["suite/score"] == pytest.approx(100.0)
    assert stat[1][-1] == pytest.approx(100.0) and stat[0][-1] == pytest.approx(75.0)


# ---------------------------------------------------------------------------------------------------------------------
# presets


def _preset_argv(preset):
    argv = []
    for key, value in preset.items():
        if isinstance(value, list):
            argv += [f"--{key}", *map(str, value)]
        else:
            argv.append(f"--{key}={value}")
    return argv


def _num_convs(module):
    # ConvEncoder is torch.jit.script-ed: its submodules keep the original class name
    return sum(1 for m in module.modules() if getattr(m, "original_name", type(m).__name__) == "Conv2d")


@pytest.mark.parametrize(
    "name, env, num_convs",
    [
        ("dmlab_small_teacher", "dmlab_30", 2),
        ("dmlab_large_student", "dmlab_30", 15),
        ("atari_small_teacher", "atari_suite", 2),
        ("atari_large_student", "atari_suite", 15),
    ],
)
def test_presets_are_valid_flags_with_the_papers_networks(name, env, num_convs):
    import pathlib

    import yaml

    from sample_factory.model.encoder import make_img_encoder

    preset = yaml.safe_load((pathlib.Path(CFG_DIR) / f"{name}.yaml").read_text())
    assert preset["env"] == env
    cfg = make_cfg(env, *_preset_argv(preset), suite=registry.suite_for_env(env))  # unknown flag: SystemExit
    for key, value in preset.items():
        assert getattr(cfg, key) == value, key
    image = (3, 72, 96) if env.startswith("dmlab") else (4, 84, 84)
    encoder = make_img_encoder(cfg, gym.spaces.Box(0, 255, image, np.uint8))
    assert _num_convs(encoder) == num_convs
    assert encoder.get_out_size() == 256


# ---------------------------------------------------------------------------------------------------------------------
# DMLab-30


def test_dmlab_module_does_not_import_the_simulator():
    code = (
        "import sys, sf_kickstart.suites.dmlab30; "
        "assert 'deepmind_lab' not in sys.modules; "
        "assert 'sf_examples.dmlab.train_dmlab' not in sys.modules; "
        "assert 'sf_examples.dmlab.dmlab_env' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_atari_suite_score_is_trimmed_by_the_report_like_every_suite():
    """Regression: Atari wrote only `suite/games_seen` and the report trimmed on `suite/tasks_seen`, so an Atari suite
    score was never trimmed to the points where every game had reported."""
    import numpy as np

    from sf_kickstart import report

    cfg = AttrDict(env="atari_suite_pong+breakout", num_policies=1, stats_avg=100, batched_sampling=False,
                   num_workers=2, num_envs_per_worker=1, atari_suite_task=None)  # fmt: skip
    runner = FakeRunner(cfg)
    atari.install(cfg, runner)
    logged = {}

    def summaries(step):
        for tag, value in runner.summaries(0, step).scalars.items():
            logged.setdefault(tag, []).append((step, value))

    runner.episode(0, {"atari_pong_raw_score": 14.6})  # one game of two so far: the score is pong's alone
    summaries(1000)
    summaries(2000)
    runner.episode(0, {"atari_breakout_raw_score": 1.7})
    summaries(3000)
    summaries(4000)
    assert [v for _, v in logged["suite/tasks_seen"]] == [1, 1, 2, 2]  # the tag every suite writes
    series = {t: report.Series(*(np.array(c, dtype=float) for c in zip(*pts)), np.zeros(len(pts)))
              for t, pts in logged.items()}  # fmt: skip
    assert list(report.comparable_scalars(series, "suite/score")["suite/score"].steps) == [3000, 4000]
    # runs logged before the fix have suite/games_seen only: trimmed as well
    old = {t: s for t, s in series.items() if t != "suite/tasks_seen"}
    assert list(report.comparable_scalars(old, "suite/score")["suite/score"].steps) == [3000, 4000]


@pytest.mark.skipif(DMLAB_AVAILABLE, reason="deepmind_lab is installed: the missing-simulator error cannot happen")
def test_dmlab_check_available_names_what_to_install():
    with pytest.raises(SuiteError) as e:
        registry.prepare_env("dmlab_30")
    msg = str(e.value)
    for needle in ("deepmind_lab", "https://github.com/deepmind/lab", "build_pip_package", "deepmind-lab", ".whl"):
        assert needle in msg


def test_dmlab_names_flags_and_defaults_without_simulator():
    assert registry.suite_for_env("dmlab_30").name == "dmlab"
    levels = dmlab30.task_names("dmlab_30")
    assert len(levels) == 30 and levels[0] == "rooms_collect_good_objects_train"
    assert dmlab30.task_names("dmlab_rooms_watermaze") == levels  # a single level shares the 30-level task id
    suite = registry.suite_for_env("dmlab_30")
    cfg = make_cfg("dmlab_30", suite=suite)
    assert cfg.encoder_conv_architecture == "convnet_impala" and cfg.rnn_type == "lstm"
    assert cfg.normalize_input_keys == ["obs"] and cfg.res_w == 96 and cfg.dmlab_use_level_cache


class _FakeDmlabEnv(gym.Env):
    """Stands in for SF's DmlabGymEnv: a Dict observation and the `level` attribute."""

    def __init__(self, level):
        self.level = level
        self.observation_space = gym.spaces.Dict(obs=gym.spaces.Box(0, 255, (3, 72, 96), np.uint8))
        self.action_space = gym.spaces.Discrete(15)

    def reset(self, *, seed=None, options=None):
        return {"obs": np.zeros((3, 72, 96), np.uint8)}, {}

    def step(self, action):
        return {"obs": np.zeros((3, 72, 96), np.uint8)}, 0.0, False, False, {}


def test_dmlab_task_id_wrapper():
    env = dmlab30.DmlabTaskId(_FakeDmlabEnv("contributed/dmlab30/rooms_watermaze"))
    obs, _ = env.reset()
    assert env.observation_space[TASK_ID_KEY] == gym.spaces.Box(0.0, 1.0, (30,), dtype=np.float32)
    assert env.observation_space.contains(obs)
    assert int(obs[TASK_ID_KEY].argmax()) == list(dmlab30.DMLAB30_LEVELS).index("rooms_watermaze") == 3
    assert obs[TASK_ID_KEY].sum() == 1.0
    obs, *_ = env.step(0)
    assert int(obs[TASK_ID_KEY].argmax()) == 3
    outside = dmlab30.DmlabTaskId(_FakeDmlabEnv("seekavoid_arena_01"))
    assert not outside.reset()[0][TASK_ID_KEY].any()


def test_dmlab_install_mirrors_sf_score_into_suite_score(monkeypatch, tmp_path):
    # SF's dmlab_env imports deepmind_lab only to build envs: a stub lets us run SF's real scoring code here
    monkeypatch.setitem(sys.modules, "deepmind_lab", types.ModuleType("deepmind_lab"))
    from sf_examples.dmlab.dmlab30 import HUMAN_SCORES, LEVEL_MAPPING

    cfg = AttrDict(env="dmlab_30", num_policies=1, dmlab_use_level_cache=False, batched_sampling=False)
    runner = FakeRunner(cfg)
    dmlab30.install(cfg, runner)
    assert len(runner.handlers) == 1 and len(runner.observers) == 1

    levels = list(dmlab30.DMLAB30_LEVELS)
    scores = {lvl: HUMAN_SCORES[LEVEL_MAPPING[lvl]] for lvl in levels}  # 100 % each
    scores["rooms_collect_good_objects_train"] = 5.0365  # (5.0365 - 0.073) / (10 - 0.073) = 50 %
    scores["rooms_watermaze"] = 108.0  # about 208 %, capped at 100
    for i, lvl in enumerate(levels[:-1]):
        runner.episode(0, {f"z_{i:02d}_{lvl}_dmlab_raw_score": scores[lvl]})
    runner.summaries(0)
    assert SUITE_SCORE_KEY not in runner.policy_avg_stats  # SF waits for every level (IMPALA's rule)
    runner.episode(0, {f"z_29_{levels[-1]}_dmlab_raw_score": scores[levels[-1]]})
    s = runner.summaries(0).scalars
    expected = (29 * 100.0 + 50.0) / 30
    assert s["_dmlab/000_capped_mean_human_norm_score"] == pytest.approx(expected, rel=1e-4)
    assert s["suite/score"] == pytest.approx(expected, rel=1e-4)
    assert runner.policy_avg_stats[SUITE_SCORE_KEY][0][-1] == pytest.approx(expected, rel=1e-4)
    assert runner.policy_avg_stats["dmlab_target_objective"][0][-1] == pytest.approx(expected, rel=1e-4)


@pytest.mark.skipif(DMLAB_AVAILABLE, reason="deepmind_lab is installed: the factory would build a real env")
def test_dmlab_env_factory_raises_without_simulator(tmp_path):
    cfg = make_cfg("dmlab_30", f"--dmlab_level_cache_path={tmp_path}", suite=registry.suite_for_env("dmlab_30"))
    factory = dmlab30.DmlabSuiteEnvFactory()
    # ImportError; AttributeError when another test left SF's dmlab_gym bound to a stub module without `Lab`
    with pytest.raises((ImportError, AttributeError)):
        factory("dmlab_30", cfg, AttrDict(worker_index=0, vector_index=0, env_id=0))


@pytest.mark.skipif(not DMLAB_AVAILABLE, reason=NO_DMLAB)
def test_dmlab_30_env_has_task_id(tmp_path):  # pragma: no cover - needs deepmind_lab
    suite = registry.prepare_env("dmlab_30")
    cfg = make_cfg("dmlab_30", f"--dmlab_level_cache_path={tmp_path}", "--dmlab_use_level_cache=False", suite=suite)
    env = make_env_func_non_batched(cfg, AttrDict(worker_index=0, vector_index=3, env_id=3))
    try:
        obs, _ = env.reset()
        assert int(obs[0][TASK_ID_KEY].argmax()) == 3
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------------------------------
# ViZDoom


@pytest.mark.skipif(VIZDOOM_AVAILABLE, reason="vizdoom is installed: the missing-simulator error cannot happen")
def test_vizdoom_check_available_names_what_to_install():
    assert registry.suite_for_env("doom_basic").name == "vizdoom"
    with pytest.raises(SuiteError, match=r"pip install vizdoom==1\.3\.2"):
        registry.prepare_env("doom_basic")


def test_vizdoom_flags_without_simulator():
    cfg = make_cfg("doom_basic", suite=registry.suite_for_env("doom_basic"))
    assert cfg.exploration_loss == "symmetric_kl" and cfg.res_w == 128 and cfg.num_bots == -1
    assert vizdoom.task_names("doom_basic") == ["doom_basic"]


@pytest.mark.skipif(not VIZDOOM_AVAILABLE, reason=NO_VIZDOOM)
def test_vizdoom_env_steps():  # pragma: no cover - needs vizdoom
    suite = registry.prepare_env("doom_basic")
    cfg = make_cfg("doom_basic", suite=suite)
    env = make_env_func_non_batched(cfg, AttrDict(worker_index=0, vector_index=0, env_id=0))
    try:
        env.reset()
        env.step([env.action_space.sample()])
    finally:
        env.close()
