"""The embedded continuous-control family: Sample Factory's MuJoCo envs under their SF names, and their partially
observed `_pomdp` variants, whose "obs" hides the velocities and whose "state" is the full observation.

The split of every task is checked by hand against the simulator itself (`data.qpos`, `data.qvel`, ...), as
gymnasium 0.29.1's `*_v4.py` builds its observation, after random steps (non-zero velocities)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from sample_factory.algo.utils.context import global_env_registry  # noqa: E402
from sf_examples.mujoco.mujoco_utils import MUJOCO_ENVS, make_mujoco_env  # noqa: E402

from sf_kickstart.suites import mujoco  # noqa: E402
from sf_kickstart.suites.base import PrivilegedObservation  # noqa: E402
from sf_kickstart.suites.registry import SuiteError, prepare_env, suite_for_env  # noqa: E402

SF_NAMES = [spec.name for spec in MUJOCO_ENVS]


def _humanoid_partial(d):
    return np.concatenate([d.qpos.flat[2:], d.cinert.flat, d.qfrc_actuator.flat, d.cfrc_ext.flat])


def _humanoid_hidden(d):
    return np.concatenate([d.qvel.flat, d.cvel.flat])


#: SF name -> (what "obs" must be, what the hidden part must be), from the simulator's state, by hand
BY_HAND = {
    "mujoco_hopper": (lambda d, e: d.qpos[1:], lambda d, e: np.clip(d.qvel, -10, 10)),
    "mujoco_halfcheetah": (lambda d, e: d.qpos[1:], lambda d, e: d.qvel),
    "mujoco_walker": (lambda d, e: d.qpos[1:], lambda d, e: np.clip(d.qvel, -10, 10)),
    "mujoco_ant": (lambda d, e: d.qpos[2:], lambda d, e: d.qvel),
    "mujoco_humanoid": (lambda d, e: _humanoid_partial(d), lambda d, e: _humanoid_hidden(d)),
    "mujoco_standup": (lambda d, e: _humanoid_partial(d), lambda d, e: _humanoid_hidden(d)),
    "mujoco_swimmer": (lambda d, e: d.qpos[2:], lambda d, e: d.qvel),
    "mujoco_pendulum": (lambda d, e: d.qpos, lambda d, e: d.qvel),
    "mujoco_doublependulum": (
        lambda d, e: np.concatenate([d.qpos[:1], np.sin(d.qpos[1:]), np.cos(d.qpos[1:]),
                                     np.clip(d.qfrc_constraint, -10, 10)]),
        lambda d, e: np.clip(d.qvel, -10, 10),
    ),
    "mujoco_reacher": (
        lambda d, e: np.concatenate([np.cos(d.qpos[:2]), np.sin(d.qpos[:2]), d.qpos[2:],
                                     e.get_body_com("fingertip") - e.get_body_com("target")]),
        lambda d, e: d.qvel[:2],
    ),
    "mujoco_pusher": (
        lambda d, e: np.concatenate([d.qpos[:7], e.get_body_com("tips_arm"), e.get_body_com("object"),
                                     e.get_body_com("goal")]),
        lambda d, e: d.qvel[:7],
    ),
}


def test_every_sf_mujoco_env_has_a_split_and_a_pomdp_variant():
    assert set(BY_HAND) == set(SF_NAMES) == set(mujoco.VELOCITY_BLOCKS)
    assert mujoco.POMDP_ENVS == [n + "_pomdp" for n in SF_NAMES]


@pytest.mark.parametrize("name", SF_NAMES + [n + "_pomdp" for n in SF_NAMES])
def test_each_name_resolves_to_the_mujoco_family_and_registers_with_sf(name):
    suite = suite_for_env(name)
    assert suite.name == "mujoco"
    suite.register(name)
    assert suite.task_names(name) == [name]
    factory = global_env_registry().get(name)
    assert factory is (mujoco.make_mujoco_pomdp_env if name.endswith("_pomdp") else make_mujoco_env)  # SF's own


@pytest.mark.parametrize("name", ["mujoco_nosuchtask", "mujoco_halfcheetah_pomdp_pomdp", "mujoco_"])
def test_unknown_mujoco_names_are_a_suite_error(name):
    with pytest.raises(SuiteError, match="Unknown MuJoCo env"):
        prepare_env(name)


@pytest.mark.parametrize("name", ["mujoco_swimmer", "mujoco_swimmer_pomdp"])
def test_swimmer_under_mujoco_3_is_one_clear_error(name):
    """gymnasium 0.29.1's swimmer.xml does not load in MuJoCo 3: a SuiteError before any worker, not a traceback."""
    import importlib.metadata

    if int(importlib.metadata.version("mujoco").split(".")[0]) < 3:
        pytest.skip("MuJoCo 2 loads Swimmer-v4")
    with pytest.raises(SuiteError, match="collision.*mujoco<3"):
        prepare_env(name)


def _swimmer_for_mujoco_3():
    """Swimmer-v4 with its XML's `collision` option (removed in MuJoCo 3; the model is otherwise the same) deleted:
    only so that its split can be checked here."""
    import re

    import mujoco as mj
    from gymnasium.envs.mujoco.swimmer_v4 import SwimmerEnv

    class Swimmer(SwimmerEnv):
        def _initialize_simulation(self):
            with open(self.fullpath) as f:
                model = mj.MjModel.from_xml_string(re.sub(r'\s+collision="[a-z]+"', "", f.read()))
            model.vis.global_.offwidth, model.vis.global_.offheight = self.width, self.height
            return model, mj.MjData(model)

    return Swimmer()


def _plain_and_pomdp(name):
    """SF's env and its pomdp variant (Swimmer under MuJoCo 3: the patched model in the same wrapper)."""
    try:
        prepare_env(name)
    except SuiteError:
        assert name in mujoco.NEEDS_MUJOCO_2
        return _swimmer_for_mujoco_3(), PrivilegedObservation(_swimmer_for_mujoco_3(), mujoco.hidden_indices(name))
    return make_mujoco_env(name, None, None), mujoco.make_mujoco_pomdp_env(name + "_pomdp")


@pytest.mark.parametrize("name", SF_NAMES)
def test_pomdp_split_by_hand(name):
    """"state" is the plain SF env's observation (same seed, same actions); "obs" is what gymnasium builds from
    positions only; the hidden indices hold exactly the velocities."""
    plain, pomdp = _plain_and_pomdp(name)
    space = pomdp.observation_space
    assert set(space.spaces) == {"obs", "state"}
    assert space["state"] == plain.observation_space  # a plain-SF teacher's space, unchanged
    n = plain.observation_space.shape[0]
    hidden = mujoco.hidden_indices(name)
    assert space["obs"].shape == (n - len(hidden),) and space["obs"].dtype == space["state"].dtype
    partial_by_hand, hidden_by_hand = BY_HAND[name]
    full, _ = plain.reset(seed=3)
    obs, _ = pomdp.reset(seed=3)
    rng = np.random.default_rng(0)
    for step in range(6):
        if step:
            action = rng.uniform(plain.action_space.low, plain.action_space.high).astype(plain.action_space.dtype)
            full = plain.step(action)[0]
            obs = pomdp.step(action)[0]
        raw = pomdp.unwrapped
        np.testing.assert_array_equal(obs["state"], full)
        np.testing.assert_allclose(obs["obs"], partial_by_hand(raw.data, raw), rtol=0, atol=1e-12)
        np.testing.assert_allclose(obs["state"][hidden], hidden_by_hand(raw.data, raw), rtol=0, atol=1e-12)
        assert pomdp.observation_space.contains(obs)
    assert np.abs(obs["state"][hidden]).max() > 0  # the velocities moved: the split was checked on real data
    plain.close()
    pomdp.close()


def test_mujoco_envs_get_sample_factorys_mujoco_defaults():
    from sf_kickstart.sf.setup import parse_args

    cfg, suite = parse_args(["--env=mujoco_hopper_pomdp", "--experiment=x"])
    assert suite.name == "mujoco"
    # sf_examples/mujoco/mujoco_params.py
    assert cfg.encoder_mlp_layers == [64, 64] and cfg.nonlinearity == "tanh" and cfg.adaptive_stddev is False
    assert cfg.rollout == 64 and cfg.batch_size == 1024 and cfg.learning_rate == pytest.approx(0.00295)
    assert cfg.normalize_input is True and cfg.with_vtrace is False


@pytest.mark.parametrize(
    "preset, env, rnn",
    [
        ("mujoco_small_teacher.yaml", "mujoco_halfcheetah", False),
        ("mujoco_large_student.yaml", "mujoco_halfcheetah", False),
        ("mujoco_pomdp_student.yaml", "mujoco_halfcheetah_pomdp", True),
    ],
)
def test_presets(preset, env, rnn):
    from sf_kickstart.sf.setup import parse_args

    cfg, _ = parse_args([f"--preset={preset}", "--experiment=x"])
    assert cfg.env == env
    assert cfg.num_workers == 2 and cfg.device == "cpu"
    assert bool(cfg.use_rnn) is rnn
    if rnn:  # partially observed: recurrent, trained through time, restricted to the partial observation
        assert cfg.recurrence == cfg.rollout and cfg.student_obs_keys == "obs"
    teacher, _ = parse_args(["--preset=mujoco_small_teacher.yaml", "--experiment=x"])
    if preset != "mujoco_small_teacher.yaml":
        assert sum(cfg.encoder_mlp_layers) > sum(teacher.encoder_mlp_layers)  # a larger student
