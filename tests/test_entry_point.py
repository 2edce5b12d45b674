"""The entry point is env-agnostic: any env Sample Factory's examples can register trains through it."""

import os

import pytest

from tests.e2e_utils import FAST, describe, latest_checkpoint, run_train, scalars

pytestmark = pytest.mark.e2e


def test_gym_classic_control_trains_with_every_sample_factory_flag(tmp_path):
    proc = run_train(
        [
            "--env=CartPole-v1",
            "--experiment=cartpole",
            f"--train_dir={tmp_path}",
            "--use_rnn=False",
            "--with_vtrace=True",  # SF 2.1.1 crashes at the first summary here; our learner does not
            "--reward_scale=0.1",
            "--normalize_returns=False",  # SF does not support return normalisation with V-trace
            "--train_for_env_steps=3000",
            *FAST,
        ]
    )
    assert proc.returncode == 0, describe(proc)
    exp = os.path.join(tmp_path, "cartpole")
    assert latest_checkpoint(exp)["env_steps"] >= 3000
    assert scalars(exp, "train/adv_mean"), "V-trace summaries were not written"
    assert not scalars(exp, "kickstart/lambda")  # no teacher: plain APPO


def test_vizdoom_and_dmlab_missing_simulators_are_clear_errors(tmp_path):
    for env, fragment in [("doom_basic", "vizdoom"), ("dmlab_30", "deepmind_lab")]:
        proc = run_train([f"--env={env}", "--experiment=x", f"--train_dir={tmp_path}"])
        assert proc.returncode == 2, describe(proc)
        assert fragment in proc.stderr and "sf_kickstart: error:" in proc.stderr


def test_configuration_sample_factory_rejects_is_a_clear_error(tmp_path):
    proc = run_train(["--env=CartPole-v1", "--experiment=bad", f"--train_dir={tmp_path}", "--with_vtrace=True",
                      "--normalize_returns=True", "--use_rnn=False", *FAST])
    assert proc.returncode == 2, describe(proc)
    assert "Sample Factory rejected the configuration" in proc.stderr
    assert "Normalized returns are not supported with vtrace" in proc.stderr
