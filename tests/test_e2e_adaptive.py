"""Adaptive λ end to end: a tiny CartPole run whose teacher's score a random student already matches, so every
teacher's λ must reach exactly 0 in the run's summaries and stay there (also after a resume)."""

import json
import os

import pytest

from tests.e2e_utils import FAST, describe, latest_checkpoint, make_teacher_dir, run_train, scalars
from tests.test_adaptive import _write_cache

pytestmark = pytest.mark.e2e

ENV = "CartPole-v1"
TEACHER_SCORE = 5.0  # a CartPole episode lasts at least ~8 steps: any student's mean return is above it


def _teacher(tmp_path):
    from gymnasium import spaces
    import numpy as np

    obs = spaces.Dict({"obs": spaces.Box(-np.inf, np.inf, (4,), np.float32)})  # as SF wraps a gym env
    return make_teacher_dir(
        os.path.join(str(tmp_path), "teacher"), env=ENV, extra=("--use_rnn=False",), obs_space=obs,
        action_space=spaces.Discrete(2),
    )


def _args(tmp_path, teacher_flag, steps):
    return [
        f"--env={ENV}",
        "--experiment=adaptive",
        f"--train_dir={tmp_path}",
        teacher_flag,
        "--kickstart_schedule=adaptive",
        "--kickstart_lambda=1.0",
        "--use_rnn=False",
        "--encoder_mlp_layers",
        "32",
        f"--train_for_env_steps={steps}",
        *FAST,
    ]


@pytest.mark.parametrize("source", ["map", "cache"])
def test_adaptive_lambda_reaches_zero_once_the_student_matches_the_teacher(tmp_path, source):
    teacher = _teacher(tmp_path)
    if source == "cache":
        _write_cache(teacher, {ENV: TEACHER_SCORE})
        flag = f"--teacher={teacher}"
    else:
        path = os.path.join(str(tmp_path), "teachers.yaml")
        with open(path, "w") as f:
            json.dump({ENV: {"path": teacher, "score": TEACHER_SCORE}}, f)  # JSON is YAML
        flag = f"--teachers={path}"
    proc = run_train(_args(tmp_path, flag, 20000))  # long enough for learner summaries after the first score
    assert proc.returncode == 0, describe(proc)
    exp = os.path.join(str(tmp_path), "adaptive")
    lam = scalars(exp, "kickstart/lambda_teacher")
    assert lam, "no per-teacher λ summaries"
    # λ = α·ρ = 1 until the first student score reaches the learner (whether a summary falls before it depends on
    # the machine's speed), then exactly 0: every score is >= G_T
    assert {v for _, v in lam} <= {0.0, 1.0}
    assert lam[-1][1] == 0.0  # G_S >= G_T: this teacher stopped supervising
    zero_from = next(step for step, v in lam if v == 0.0)
    assert all(v == 0.0 for step, v in lam if step >= zero_from)  # non-increasing: it never comes back
    ck = latest_checkpoint(exp)
    assert ck["kickstart"]["adaptive"] == {"teacher": 0.0}

    resumed = run_train(_args(tmp_path, flag, 25000))  # the factor is restored, not reset to 1
    assert resumed.returncode == 0, describe(resumed)
    after = [v for step, v in scalars(exp, "kickstart/lambda_teacher") if step > ck["env_steps"]]
    assert after and all(v == 0.0 for v in after)


def test_adaptive_without_a_teacher_score_is_bad_input(tmp_path):
    proc = run_train(_args(tmp_path, f"--teacher={_teacher(tmp_path)}", 1000))
    assert proc.returncode == 2, describe(proc)
    assert "sf_kickstart: error:" in proc.stderr and "score" in proc.stderr
