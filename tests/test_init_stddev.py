"""--kickstart_init_stddev (issue 21): a new Gaussian student with Sample Factory's learned log-std starts it at its
teachers', a resumed one keeps its checkpoint's, and a student or teacher without such a parameter is refused."""

from __future__ import annotations

import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from sf_kickstart.errors import UserError
from sf_kickstart.sf.setup import teacher_log_std
from tests.e2e_utils import latest_checkpoint, run_train, trained_experiment

BOX = gym.spaces.Box(-1.0, 1.0, (3,))
LOG_STD_KEY = "action_parameterization.learned_stddev"


def _teacher(name, log_std):
    """A stand-in with what teacher_log_std reads: the name and the model's action parameterization."""
    param = None if log_std is None else torch.nn.Parameter(torch.tensor(log_std))
    head = SimpleNamespace() if param is None else SimpleNamespace(learned_stddev=param)
    return SimpleNamespace(spec=SimpleNamespace(name=name), model=SimpleNamespace(action_parameterization=head))


def _cfg(flag=True, adaptive=False):
    return SimpleNamespace(kickstart_init_stddev=flag, adaptive_stddev=adaptive)


def test_the_start_is_the_mean_of_the_teachers_log_stds():
    teachers = [_teacher("a", [-1.0, -2.0, 0.5]), _teacher("b", [-3.0, 0.0, 0.5])]
    assert teacher_log_std(_cfg(), BOX, teachers) == pytest.approx([-2.0, -1.0, 0.5])


def test_without_the_flag_nothing_is_read():
    assert teacher_log_std(_cfg(flag=False), BOX, [_teacher("a", None)]) is None


@pytest.mark.parametrize("space,adaptive,needle", [
    (gym.spaces.Discrete(4), False, "Box action space"),
    (BOX, True, "--adaptive_stddev=True"),
])
def test_a_student_without_a_learned_std_is_refused(space, adaptive, needle):
    with pytest.raises(UserError, match="--kickstart_init_stddev") as err:
        teacher_log_std(_cfg(adaptive=adaptive), space, [_teacher("a", [0.0, 0.0, 0.0])])
    assert needle in str(err.value)


def test_a_teacher_with_a_state_dependent_std_is_refused_by_name():
    with pytest.raises(UserError, match="teacher 'adaptive_one' has a state-dependent std"):
        teacher_log_std(_cfg(), BOX, [_teacher("fine", [0.0] * 3), _teacher("adaptive_one", None)])


# ---------------------------------------------------------------------------------------------------- e2e
ENV = "mujoco_halfcheetah"
TEACHER = "zoo:mujoco_halfcheetah_small"  # learned std 0.15-0.30, far from SF's initial 1
TINY = ["--num_workers=1", "--num_envs_per_worker=2", "--worker_num_splits=2", "--batch_size=128", "--rollout=32",
        "--num_batches_per_epoch=1", "--num_epochs=1", "--save_every_sec=5", "--decorrelate_experience_max_seconds=0",
        "--device=cpu", "--seed=1", "--encoder_mlp_layers", "32", "32", f"--teacher={TEACHER}",
        "--kickstart_schedule=constant"]


def _zoo_teacher_log_std() -> np.ndarray:
    from sf_kickstart.experiments import resolve_experiment_dir

    return latest_checkpoint(resolve_experiment_dir(TEACHER, None))["model"][LOG_STD_KEY].numpy()


def _train(train_dir, name, frames, *flags):
    proc = run_train([f"--env={ENV}", f"--experiment={name}", f"--train_dir={train_dir}",
                      f"--train_for_env_steps={frames}", *TINY, *flags])
    return latest_checkpoint(trained_experiment(proc, train_dir, name))["model"][LOG_STD_KEY].numpy()


@pytest.mark.e2e
def test_a_new_student_starts_at_the_teachers_std_and_a_resumed_one_keeps_its_own(tmp_path):
    teacher = _zoo_teacher_log_std()
    assert np.abs(teacher).min() > 1.0  # the test means something: SF's start (log 1 = 0) is far from it
    # 2000 frames = ~16 Adam steps of at most ~lr (0.00295) each: the std moves by < 0.1 from where it started
    started = _train(tmp_path, "init", 2000, "--kickstart_init_stddev=True")
    np.testing.assert_allclose(started, teacher, atol=0.1)
    plain = _train(tmp_path, "plain", 2000)
    np.testing.assert_allclose(plain, math.log(1.0), atol=0.1)  # SF's --initial_stddev=1
    resumed = _train(tmp_path, "plain", 4000, "--kickstart_init_stddev=True")
    np.testing.assert_allclose(resumed, plain, atol=0.1)  # the checkpoint's, not the teacher's

# a discrete student with the flag: exit 2 before any worker starts (tests/test_e2e_continuous.py)
