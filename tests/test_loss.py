"""The kickstart term against hand computations."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from sf_kickstart.kickstart.loss import (
    CATEGORICAL,
    UnsupportedActionSpace,
    cross_entropy,
    head_sizes,
    kickstart_loss,
    term_summaries,
)
from sf_kickstart.sf.distillation import action_heads


def _softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def test_cross_entropy_matches_hand_computation():
    t = np.array([1.0, 2.0, 0.5])
    s = np.array([0.0, -1.0, 3.0])
    expected = -(_softmax(t) * np.log(_softmax(s))).sum()
    got = cross_entropy(torch.tensor(t[None]), torch.tensor(s[None]), [3])
    assert got.shape == (1,)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_loss_weights_valids_and_missing_teachers():
    torch.manual_seed(0)
    s = torch.randn(4, 5, requires_grad=True)
    t = torch.randn(4, 5)
    weights = torch.tensor([2.0, 2.0, 0.0, 2.0])  # sample 2: task without teacher
    valids = torch.tensor([True, True, True, False])  # sample 3: invalid
    has_teacher = torch.tensor([True, True, False, True])
    term = kickstart_loss(s, t, weights, valids, [5], has_teacher)
    ce = cross_entropy(t, s, [5]).detach()
    # mean over the 3 valid steps; only samples 0 and 1 are supervised
    expected = (2.0 * ce[0] + 2.0 * ce[1]) / 3.0
    assert term.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert term.supervised.tolist() == [True, True, False, False]
    term.loss.backward()
    assert s.grad[2].abs().sum() == 0 and s.grad[3].abs().sum() == 0
    assert s.grad[0].abs().sum() > 0


def test_gradient_equals_kl_gradient():
    """d/ds H(T,S) == d/ds KL(T||S): the teacher's entropy does not depend on the student."""
    t = torch.randn(3, 4)
    s1 = torch.randn(3, 4, requires_grad=True)
    s2 = s1.detach().clone().requires_grad_(True)
    kickstart_loss(s1, t, torch.ones(3), torch.ones(3, dtype=torch.bool), [4]).loss.backward()
    p_t = torch.softmax(t, -1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(s2, -1))).sum(-1).mean()
    kl.backward()
    assert torch.allclose(s1.grad, s2.grad, atol=1e-6)


def test_teacher_receives_no_gradient():
    t = torch.randn(2, 3, requires_grad=True)
    s = torch.randn(2, 3, requires_grad=True)
    kickstart_loss(s, t, torch.ones(2), torch.ones(2, dtype=torch.bool), [3]).loss.backward()
    assert t.grad is None


def test_identical_policies_have_zero_kl_and_full_agreement():
    x = torch.randn(6, 7)
    term = kickstart_loss(x.clone(), x.clone(), torch.ones(6), torch.ones(6, dtype=torch.bool), [7])
    summ = term_summaries(term)
    assert summ["kl_teacher_student"] == pytest.approx(0.0, abs=1e-6)
    assert summ["action_agreement"] == 1.0
    assert summ["cross_entropy"] == pytest.approx(summ["teacher_entropy"], rel=1e-6)


def test_tuple_action_space_sums_heads():
    space = spaces.Tuple([spaces.Discrete(2), spaces.Discrete(3)])
    heads = action_heads(space)
    assert [h.kind for h in heads] == [CATEGORICAL, CATEGORICAL]
    splits = head_sizes(heads)
    assert splits == [2, 3]
    t = torch.randn(1, 5)
    s = torch.randn(1, 5)
    expected = cross_entropy(t[:, :2], s[:, :2], [2]) + cross_entropy(t[:, 2:], s[:, 2:], [3])
    assert cross_entropy(t, s, splits).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("space", [spaces.MultiBinary(3), spaces.MultiDiscrete([2, 3]), spaces.Box(-1, 1, (2, 2))])
def test_unsupported_action_space_is_rejected_clearly(space):
    with pytest.raises(UnsupportedActionSpace, match="Discrete, a 1-D Box"):
        action_heads(spaces.Tuple([spaces.Discrete(2), space]))


def test_summaries_nan_free_when_no_supervised_steps():
    term = kickstart_loss(torch.randn(2, 3), torch.randn(2, 3), torch.zeros(2), torch.ones(2, dtype=torch.bool), [3])
    assert term.loss.item() == 0.0
    assert math.isnan(term_summaries(term)["kl_teacher_student"])
