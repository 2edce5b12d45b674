"""End to end on CPU, continuous control (issue 21): a tiny teacher trained by *plain Sample Factory's MuJoCo example*
(`python -m sf_examples.mujoco.train_mujoco`: Gaussian policy with a learned log-std, `--adaptive_stddev=False`,
normalised inputs and returns, non-batched sampling), and a student kickstarted from it on `mujoco_halfcheetah` with
value distillation.

What is proven here, from the learner's `--kickstart_debug_dump`:
  * the teacher logits (means, log-stds) and teacher values stored in the shared-memory buffers equal the teacher's
    own forward pass (SF's model, its own normalisers) on the stored raw observations;
  * the kickstart loss the learner computed equals λ·H(π_T, π_S) recomputed by hand (numpy closed form for diagonal
    Gaussians) from that independent teacher forward and the student's dumped logits;
  * the value-distillation loss equals c·λ·(V_S − V_T)² recomputed by hand, V_T normalised by the student's returns
    statistics;
  * tensorboard gets the continuous-head diagnostics.
"""

from __future__ import annotations

import glob
import math
import os

import numpy as np
import pytest
import torch

from sf_kickstart import processes
from tests.e2e_utils import describe, run_train, scalars, trained_experiment

pytestmark = pytest.mark.e2e

ENV = "mujoco_halfcheetah"
TINY = [
    "--num_workers=1", "--num_envs_per_worker=2", "--worker_num_splits=2", "--batch_size=128", "--rollout=32",
    "--num_batches_per_epoch=1", "--num_epochs=1", "--save_every_sec=5", "--experiment_summaries_interval=1",
    "--decorrelate_experience_max_seconds=0", "--device=cpu", "--seed=1",
]
LAMBDA, VALUE_COEFF = 0.5, 0.3


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("train_dir"))


@pytest.fixture(scope="module")
def plain_sf_teacher(train_dir):
    """Sample Factory's own MuJoCo example, its own defaults (adaptive_stddev=False, normalize_returns, ...)."""
    proc = processes.run_train(
        [f"--env={ENV}", "--experiment=teacher_mujoco", f"--train_dir={train_dir}", "--train_for_env_steps=2000",
         "--encoder_mlp_layers", "16", "16", *TINY],
        timeout=300, module="sf_examples.mujoco.train_mujoco",
    )
    return trained_experiment(proc, train_dir, "teacher_mujoco")


@pytest.fixture(scope="module")
def kickstarted(train_dir, plain_sf_teacher):
    proc = run_train([
        f"--env={ENV}", "--experiment=student_mujoco", f"--train_dir={train_dir}", f"--teacher={plain_sf_teacher}",
        "--kickstart_schedule=constant", f"--kickstart_lambda={LAMBDA}", f"--kickstart_value_coeff={VALUE_COEFF}",
        "--kickstart_debug_dump=3", "--train_for_env_steps=1500", "--encoder_mlp_layers", "32", "32", *TINY,
    ])
    assert proc.returncode == 0, describe(proc)
    return os.path.join(train_dir, "student_mujoco")


def _teacher(teacher_dir):
    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf.setup import parse_args
    from sf_kickstart.teachers import FrozenTeacher, TeacherSpec

    cfg, _ = parse_args([f"--env={ENV}", "--experiment=probe"])
    info = make_env_info(cfg)
    return FrozenTeacher(TeacherSpec(path=teacher_dir), info.obs_space, info.action_space, values=True)


def _np(x):
    return x.detach().double().numpy()


def _gaussian_cross_entropy(teacher_logits, student_logits):
    """H(π_T, π_S) = KL(π_T ‖ π_S) + H(π_T) for diagonal Gaussians [μ..., logσ...], summed over dimensions."""
    n = teacher_logits.shape[1] // 2
    mt, st = teacher_logits[:, :n], np.clip(np.exp(teacher_logits[:, n:]), 1e-4, 1e4)
    ms, ss = student_logits[:, :n], np.clip(np.exp(student_logits[:, n:]), 1e-4, 1e4)
    kl = np.log(ss / st) + (st**2 + (mt - ms) ** 2) / (2 * ss**2) - 0.5
    return (kl + 0.5 * np.log(2 * math.pi * math.e * st**2)).sum(axis=1)


def test_stored_teacher_outputs_equal_the_teachers_forward_and_the_losses_are_lambda_h(kickstarted, plain_sf_teacher):
    dumps = sorted(glob.glob(os.path.join(kickstarted, "kickstart_debug", "p0", "batch_*.pt")))
    assert len(dumps) == 3
    teacher = _teacher(plain_sf_teacher)
    assert not teacher.lean_tail  # SF's MuJoCo default: learned log-std, not a plain linear head
    for path in dumps:
        d = torch.load(path, weights_only=False)
        n = d["teacher_logits"].shape[0]
        assert d["teacher_logits"].shape == (n, 12) and d["kickstart_loss"] == "cross_entropy"  # 6 means, 6 log-stds
        assert d["teacher_idx"].eq(0).all()
        outputs, _ = teacher.forward(d["obs"], d["teacher_rnn"])
        logits, values = outputs[:, :12], teacher.values_in_return_units(outputs[:, 12])
        assert torch.allclose(logits, d["teacher_logits"], atol=1e-5), "stored logits differ from the teacher's"
        assert torch.allclose(values, d["teacher_values"], atol=1e-4), "stored values differ from the teacher's"
        # the learned log-std of SF's MuJoCo parameterisation: one value per dimension, on every row
        assert torch.equal(d["teacher_logits"][:, 6:], d["teacher_logits"][:1, 6:].expand(n, 6))

        valid = _np(d["valids"]).astype(bool)
        w = _np(d["weights"])
        assert np.allclose(w, LAMBDA)
        h = _gaussian_cross_entropy(_np(logits), _np(d["student_logits"]))
        assert d["loss"] == pytest.approx((w * h)[valid].sum() / max(valid.sum(), 1), rel=1e-4)

        # value distillation: V_T normalised by the student's running return statistics (SF's normaliser, clip 5)
        mean, var = d["student_returns_mean"], d["student_returns_var"]
        target = np.clip((_np(d["teacher_values"]) - mean) / math.sqrt(var + 1e-5), -5, 5)
        sq = (_np(d["student_values"]) - target) ** 2
        expected = (VALUE_COEFF * w * sq)[valid].sum() / max(valid.sum(), 1)
        assert d["value_loss"] == pytest.approx(expected, rel=1e-4)
        assert d["value_loss"] > 0


def test_tensorboard_has_the_continuous_diagnostics(kickstarted):
    for tag in ["kickstart/loss", "kickstart/kl_teacher_student", "kickstart/teacher_entropy",
                "kickstart/mean_squared_error", "kickstart/teacher_std", "kickstart/student_std",
                "kickstart/value_loss", "kickstart/value_mse"]:
        values = [v for _, v in scalars(kickstarted, tag)]
        assert values, f"missing {tag}"
        assert all(np.isfinite(values)), tag
    assert not scalars(kickstarted, "kickstart/action_agreement")  # no categorical head
    assert all(v > 0 for _, v in scalars(kickstarted, "kickstart/teacher_std"))


@pytest.mark.parametrize("flag,error", [
    ("--kickstart_loss=mse_mean", "--kickstart_loss=mse_mean"),
    ("--kickstart_init_stddev=True", "--kickstart_init_stddev needs a Box action space"),
])
def test_a_continuous_only_flag_on_a_discrete_student_exits_2_before_any_worker_starts(tmp_path, flag, error):
    from tests.e2e_utils import make_teacher_dir

    teacher = make_teacher_dir(str(tmp_path / "discrete_teacher"))
    proc = run_train(["--env=minigrid_DoorKey-5x5", "--experiment=continuous_only", f"--train_dir={tmp_path}",
                      f"--teacher={teacher}", flag, "--device=cpu"], timeout=120)
    assert proc.returncode == 2, describe(proc)
    assert f"sf_kickstart: error: {error}" in proc.stderr
    assert "Traceback" not in proc.stderr
