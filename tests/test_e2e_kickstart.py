"""End to end on CPU: a tiny teacher trained by *plain Sample Factory*, a larger student kickstarted from it.

What is proven here:
  * the teacher logits stored in the shared-memory buffers equal the teacher's own forward pass on the stored raw
    observations and stored teacher recurrent states, and the loss the learner computed equals λ·CE recomputed from
    that independent teacher forward pass: the teacher's logits reached the loss;
  * each env's teacher recurrent state is carried from step to step and reset at episode ends;
  * the teacher is not part of the student (state_dict, optimizer, checkpoint);
  * tensorboard gets the kickstart scalars; a resumed run continues λ and frames where they were.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import torch

from tests.e2e_utils import FAST, describe, latest_checkpoint, run_plain_sample_factory, run_train, scalars, trained_experiment

pytestmark = pytest.mark.e2e

SMALL = ["--encoder_mlp_layers", "32", "--use_rnn=True", "--rnn_type=gru", "--rnn_size=32", "--normalize_input=False"]


@pytest.fixture(scope="session")
def train_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("train_dir"))


@pytest.fixture(scope="session")
def plain_sf_teacher(train_dir):
    """A small recurrent teacher trained by Sample Factory's own runner (PPO/GAE, since SF 2.1.1's V-trace crashes)."""
    proc = run_plain_sample_factory(
        [
            "--env=minigrid_DoorKey-5x5",
            "--experiment=teacher_plain_sf",
            f"--train_dir={train_dir}",
            "--train_for_env_steps=3000",
            "--with_vtrace=False",
            *SMALL,
            *FAST,
        ]
    )
    return trained_experiment(proc, train_dir, "teacher_plain_sf")


@pytest.fixture(scope="session")
def kickstarted(train_dir, plain_sf_teacher):
    proc = run_train(
        [
            "--preset=minigrid_large_student.yaml",
            "--env=minigrid_suite",
            "--experiment=student_ks",
            f"--train_dir={train_dir}",
            f"--teacher={plain_sf_teacher}",
            "--kickstart_schedule=constant",
            "--kickstart_lambda=0.5",
            "--kickstart_debug_dump=4",
            "--train_for_env_steps=2500",
            "--encoder_mlp_layers",
            "128",
            "128",
            "--rnn_size=96",
            *FAST,
        ]
    )
    assert proc.returncode == 0, describe(proc)
    return os.path.join(train_dir, "student_ks")


def _load_teacher(teacher_dir):
    from sf_kickstart.suites import minigrid
    from sf_kickstart.teachers import FrozenTeacher, TeacherSpec
    from gymnasium import spaces

    return FrozenTeacher(TeacherSpec(path=teacher_dir), minigrid.observation_space(), spaces.Discrete(7))


def test_stored_teacher_logits_equal_teacher_forward_and_reach_the_loss(kickstarted, plain_sf_teacher):
    from sf_kickstart.kickstart.loss import kickstart_loss

    dumps = sorted(glob.glob(os.path.join(kickstarted, "kickstart_debug", "p0", "batch_*.pt")))
    assert len(dumps) == 4
    teacher = _load_teacher(plain_sf_teacher)
    carried = resets = 0
    for path in dumps:
        d = torch.load(path, weights_only=False)
        n = d["teacher_logits"].shape[0]
        assert n == 256
        assert d["teacher_idx"].eq(0).all()  # one teacher for every task
        assert d["teacher_rnn"].shape == (n, teacher.rnn_size)

        logits, new_h = teacher.forward(d["obs"], d["teacher_rnn"])
        assert torch.allclose(logits, d["teacher_logits"], atol=1e-5), "stored logits differ from the teacher's"

        # the learner's kickstart loss equals λ·CE recomputed from the independent teacher forward pass
        assert torch.allclose(d["weights"], torch.full((n,), 0.5))
        term = kickstart_loss(d["student_logits"], logits, d["weights"], d["valids"], [7])
        assert term.loss.item() == pytest.approx(d["loss"], rel=1e-5)
        assert d["loss"] > 0

        # teacher state per env: carried to the next step of the same trajectory, zeroed after an episode end
        rollout = 32
        h = d["teacher_rnn"].view(-1, rollout, teacher.rnn_size)
        nh = new_h.view(-1, rollout, teacher.rnn_size)
        dones = d["dones"].view(-1, rollout).bool()
        for traj in range(h.shape[0]):
            for t in range(rollout - 1):
                expected = torch.zeros_like(nh[traj, t]) if dones[traj, t] else nh[traj, t]
                assert torch.allclose(h[traj, t + 1], expected, atol=1e-5), (traj, t)
                resets += int(dones[traj, t])
                carried += int(not dones[traj, t])
        assert d["teacher_rnn"].abs().sum() > 0
    # MultiRoom-N2-S4 (env 5) ends its episodes within 40 steps: the 4 dumped batches hold resets
    assert carried > 0 and resets > 0


def test_teacher_is_not_part_of_the_student(kickstarted):
    from sample_factory.model.actor_critic import create_actor_critic
    from sample_factory.utils.attr_dict import AttrDict
    import json

    from gymnasium import spaces
    from sf_kickstart.suites import minigrid

    ckpt = latest_checkpoint(kickstarted)
    with open(os.path.join(kickstarted, "config.json")) as f:
        cfg = AttrDict(json.load(f))
    student = create_actor_critic(cfg, minigrid.observation_space(), spaces.Discrete(7))
    assert set(ckpt["model"].keys()) == set(student.state_dict().keys())
    assert not any("teacher" in k for k in ckpt["model"])
    num_param_tensors = len(list(student.parameters()))
    assert len(ckpt["optimizer"]["param_groups"][0]["params"]) == num_param_tensors
    assert ckpt["kickstart"]["alpha"] == pytest.approx(0.5)
    assert ckpt["kickstart"]["rho"] == {"teacher_plain_sf": 1.0}


def test_tensorboard_has_kickstart_scalars(kickstarted):
    lam = scalars(kickstarted, "kickstart/lambda")
    assert lam and all(v == pytest.approx(0.5) for _, v in lam)
    for tag in ["kickstart/loss", "kickstart/kl_teacher_student", "kickstart/action_agreement", "kickstart/teacher_entropy"]:
        values = [v for _, v in scalars(kickstarted, tag)]
        assert values, f"missing {tag}"
        assert all(np.isfinite(values))
    assert all(0.0 <= v <= 1.0 for _, v in scalars(kickstarted, "kickstart/action_agreement"))
    assert scalars(kickstarted, "suite/score"), "suite score missing"


def test_resume_continues_lambda_and_frames(train_dir, plain_sf_teacher):
    common = [
        "--preset=minigrid_large_student.yaml",
        "--env=minigrid_suite",
        "--experiment=student_resume",
        f"--train_dir={train_dir}",
        f"--teacher={plain_sf_teacher}",
        "--kickstart_schedule=linear",
        "--kickstart_lambda=1.0",
        "--kickstart_end_frames=8000",
        "--encoder_mlp_layers",
        "64",
        "--rnn_size=64",
        *FAST,
    ]
    exp = os.path.join(train_dir, "student_resume")
    first = run_train(common + ["--train_for_env_steps=2000"])
    assert first.returncode == 0, describe(first)
    ck1 = latest_checkpoint(exp)
    f1 = ck1["env_steps"]
    assert f1 >= 2000
    assert ck1["kickstart"]["alpha"] == pytest.approx(max(0.0, 1 - f1 / 8000), abs=1e-6)

    second = run_train(common + ["--train_for_env_steps=4000"])
    assert second.returncode == 0, describe(second)
    ck2 = latest_checkpoint(exp)
    assert ck2["env_steps"] > f1
    assert ck2["kickstart"]["alpha"] == pytest.approx(max(0.0, 1 - ck2["env_steps"] / 8000), abs=1e-6)
    # every λ logged after the resume continues from where the first run left off, not from 1.0
    after = [v for step, v in scalars(exp, "kickstart/lambda") if step > f1]
    assert after, "no λ summaries after resume"
    assert max(after) <= 1 - f1 / 8000 + 1e-6
