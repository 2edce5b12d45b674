"""Label smoothing of the teacher (`--kickstart_teacher_smoothing=ε`): the categorical target (1 − ε)·π_T + ε·uniform,
by hand; the student's optimum under it keeps every action at ε/n or more; Gaussian heads untouched; the bad inputs
(exit 2); and a real KickstartLearner (in-process) whose kickstart loss is the λ-weighted cross-entropy to the
smoothed target."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from gymnasium import spaces

from sf_kickstart.kickstart.loss import (
    KickstartLossError,
    check_smoothing,
    cross_entropy,
    smooth_teacher,
)
from sf_kickstart.sf import setup
from sf_kickstart.sf.distillation import action_heads, policy_term
from tests.test_reengage import MAP_SCORES, ROLLOUT, _batch, _run_cfg


def test_the_target_mixes_in_a_uniform_distribution_by_hand():
    heads = action_heads(spaces.Discrete(4))
    logits = torch.tensor([[3.0, 0.0, -2.0, 1.0]])
    p = torch.softmax(logits, -1)
    smoothed = torch.softmax(smooth_teacher(logits, heads, 0.2), -1)
    assert smoothed.tolist()[0] == pytest.approx((0.8 * p + 0.05).tolist()[0], rel=1e-6)
    assert smooth_teacher(logits, heads, 0.0) is logits  # off: the teacher as it is


def test_a_tuple_smooths_its_categorical_head_only():
    space = spaces.Tuple([spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
    heads = action_heads(space)
    logits = torch.tensor([[5.0, 0.0, 0.0, 0.3, -0.4, -1.0, -2.0]])  # 3 logits, then 2 means and 2 log-stds
    out = smooth_teacher(logits, heads, 0.3)
    assert out[0, 3:].tolist() == logits[0, 3:].tolist()
    assert torch.softmax(out[0, :3], -1).min().item() >= 0.1 - 1e-7  # every action >= ε/n


def test_the_students_optimum_keeps_an_action_the_teacher_never_takes():
    """Minimising H(target, π_S) puts π_S on the target: a teacher with p(a) ≈ 0 leaves the student p(a) ≈ ε/n."""
    heads = action_heads(spaces.Discrete(7))
    teacher = torch.tensor([[8.0, 0, 0, 0, -30.0, 0, 0]])  # action 4 (MiniGrid's drop): p ≈ 1e-17
    student = torch.zeros(1, 7, requires_grad=True)
    opt = torch.optim.SGD([student], lr=2.0)
    target = smooth_teacher(teacher, heads, 0.14)
    for _ in range(500):
        opt.zero_grad()
        cross_entropy(target, student, [7]).sum().backward()
        opt.step()
    p = torch.softmax(student, -1)[0]
    assert p[4].item() == pytest.approx(0.02, abs=1e-3)  # ε/n = 0.14/7
    unsmoothed = torch.zeros(1, 7, requires_grad=True)
    opt = torch.optim.SGD([unsmoothed], lr=2.0)
    for _ in range(500):
        opt.zero_grad()
        cross_entropy(teacher, unsmoothed, [7]).sum().backward()
        opt.step()
    assert torch.softmax(unsmoothed, -1)[0, 4].item() < 0.01  # without it the action fades (and keeps fading)


def test_policy_term_is_the_weighted_cross_entropy_to_the_smoothed_target():
    space = spaces.Discrete(3)
    heads = action_heads(space)
    from sample_factory.algo.utils.action_distributions import get_action_distribution

    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.0, 4.0, 0.0]])
    student = torch.tensor([[0.5, 0.5, 0.0], [1.0, -1.0, 0.0]])
    weights, valids = torch.tensor([1.0, 0.5]), torch.tensor([True, True])
    term = policy_term("cross_entropy", space, heads, teacher, get_action_distribution(space, student), weights, valids,
                       smoothing=0.3)
    target = 0.7 * torch.softmax(teacher, -1) + 0.1
    by_hand = -(target * torch.log_softmax(student, -1)).sum(-1)
    assert term.loss.item() == pytest.approx(float((weights * by_hand).sum() / 2), rel=1e-6)
    plain = policy_term("cross_entropy", space, heads, teacher, get_action_distribution(space, student), weights, valids)
    assert plain.loss.item() != pytest.approx(term.loss.item(), rel=1e-3)


def test_values_out_of_range_and_box_only_spaces_are_refused():
    for bad in (-0.1, 1.0, float("nan"), float("inf")):
        with pytest.raises(KickstartLossError, match=r"in \[0, 1\)"):
            check_smoothing(bad)
    box = spaces.Box(-1, 1, (6,))
    with pytest.raises(KickstartLossError, match="no categorical"):
        check_smoothing(0.1, action_heads(box), box)
    check_smoothing(0.0, action_heads(box), box)  # off is fine everywhere
    check_smoothing(0.5, action_heads(spaces.Discrete(7)), spaces.Discrete(7))


@pytest.mark.parametrize("value", ["-0.1", "1", "nan"])
def test_bad_values_are_one_clear_error_exit_2(tmp_path, capsys, value):
    from sf_kickstart.train import main

    teacher = os.path.join(str(tmp_path), "no_worker_starts")  # refused before any teacher is read
    rc = main(["--env=minigrid_suite", "--experiment=bad", f"--train_dir={tmp_path}", f"--teacher={teacher}",
               "--device=cpu", f"--kickstart_teacher_smoothing={value}"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--kickstart_teacher_smoothing must be a number in [0, 1)" in err and "Traceback" not in err


def test_a_real_learner_imitates_the_smoothed_teacher(tmp_path):
    from sample_factory.algo.utils.model_sharing import ParameterServer

    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf.learner import KickstartLearner

    cfg, suite = _run_cfg(tmp_path, MAP_SCORES, "--kickstart_teacher_smoothing=0.35")
    env_info = make_env_info(cfg)
    layout = setup.build_layout(cfg, suite, env_info)
    assert layout.teacher_smoothing == 0.35
    versions = torch.zeros([1], dtype=torch.int32)
    learner = KickstartLearner(cfg, env_info, versions, 0, ParameterServer(0, versions, False), layout=layout)
    learner.init()
    learner.train(_batch(layout, env_info, [0, 1, 2, 3], [0, 0, 0, 0], ROLLOUT))

    out_dir = os.path.join(str(tmp_path), "unit", "kickstart_debug", "p0")
    dump = torch.load(os.path.join(out_dir, sorted(os.listdir(out_dir))[-1]), weights_only=False)
    n = dump["teacher_logits"].shape[-1]
    target = 0.65 * torch.softmax(dump["teacher_logits"], -1) + 0.35 / n
    ce = -(target * torch.log_softmax(dump["student_logits"], -1)).sum(-1)
    valid = dump["valids"].bool()
    expected = float(torch.where(valid, dump["weights"] * ce, torch.zeros_like(ce)).sum() / valid.sum())
    assert np.isfinite(expected) and expected > 0
    assert dump["loss"] == pytest.approx(expected, rel=1e-5)
    plain = -(torch.softmax(dump["teacher_logits"], -1) * torch.log_softmax(dump["student_logits"], -1)).sum(-1)
    unsmoothed = float(torch.where(valid, dump["weights"] * plain, torch.zeros_like(plain)).sum() / valid.sum())
    # the test teacher is near uniform, so the two differ by little: still 10x more than the loss misses the target by
    assert abs(dump["loss"] - expected) * 10 < abs(unsmoothed - expected)
