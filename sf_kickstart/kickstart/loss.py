"""The kickstarting term as a pure function of logits, per-sample weights and the valid mask.

    L_ks = mean over valid steps t of  λ(t) · H(π_T(·|x_t), π_S(·|x_t)),   H(p, q) = -Σ_a p(a) log q(a)

H is the cross-entropy from teacher to student; its gradient w.r.t. the student equals that of KL(π_T ‖ π_S)
(the teacher's entropy is a constant). λ(t) is per sample: λ_i = α·ρ_i for the teacher i that supervised step t,
and 0 for steps whose task has no teacher, so those steps add nothing. Steps are averaged over *all* valid steps,
exactly like Sample Factory averages its policy loss, so λ is on the same scale as the RL loss.

Action spaces: Discrete (one categorical) and Tuple of Discrete (a sum of categoricals over the concatenated
logits, as Sample Factory's TupleActionDistribution lays them out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from sf_kickstart.errors import UserError


class UnsupportedActionSpace(UserError):
    pass


def logit_splits(action_space) -> List[int]:
    """Sizes of the categorical heads whose logits are concatenated in SF's `action_logits`."""
    if isinstance(action_space, spaces.Discrete):
        return [int(action_space.n)]
    if isinstance(action_space, spaces.Tuple) and all(isinstance(s, spaces.Discrete) for s in action_space.spaces):
        return [int(s.n) for s in action_space.spaces]
    raise UnsupportedActionSpace(
        f"Kickstarting needs a discrete policy (Discrete or Tuple of Discrete), got {action_space}: the paper's "
        f"cross-entropy between teacher and student policies is defined here for categorical distributions only"
    )


def _split(logits: Tensor, splits: Sequence[int]):
    if len(splits) == 1:
        return (logits,)
    return torch.split(logits, list(splits), dim=-1)


def cross_entropy(teacher_logits: Tensor, student_logits: Tensor, splits: Sequence[int]) -> Tensor:
    """Per-sample H(π_T, π_S), summed over independent categorical heads. Gradient flows to the student only."""
    total = None
    for t, s in zip(_split(teacher_logits.detach(), splits), _split(student_logits, splits)):
        ce = -(F.softmax(t, dim=-1) * F.log_softmax(s, dim=-1)).sum(dim=-1)
        total = ce if total is None else total + ce
    return total


def entropy(logits: Tensor, splits: Sequence[int]) -> Tensor:
    total = None
    for part in _split(logits, splits):
        logp = F.log_softmax(part, dim=-1)
        h = -(logp.exp() * logp).sum(dim=-1)
        total = h if total is None else total + h
    return total


def agreement(teacher_logits: Tensor, student_logits: Tensor, splits: Sequence[int]) -> Tensor:
    """1.0 where the greedy actions of teacher and student agree on every head."""
    agree = None
    for t, s in zip(_split(teacher_logits, splits), _split(student_logits, splits)):
        a = t.argmax(dim=-1) == s.argmax(dim=-1)
        agree = a if agree is None else agree & a
    return agree.float()


@dataclass
class KickstartTerm:
    """The loss plus what its diagnostics need; the diagnostics are computed only when asked for (summaries)."""

    loss: Tensor  # scalar, differentiable w.r.t. the student logits
    ce: Tensor  # per-sample cross-entropy (detached)
    supervised: Tensor  # bool per sample: valid and has a teacher
    teacher_logits: Tensor
    student_logits: Tensor  # detached
    splits: Sequence[int]
    weights: Tensor  # per-sample λ (detached)

    @property
    def teacher_entropy(self) -> Tensor:
        return entropy(self.teacher_logits, self.splits)

    @property
    def kl(self) -> Tensor:  # KL(π_T ‖ π_S) = H(π_T, π_S) - H(π_T)
        return self.ce - self.teacher_entropy

    @property
    def agreement(self) -> Tensor:
        return agreement(self.teacher_logits, self.student_logits, self.splits)


def kickstart_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    weights: Tensor,
    valids: Tensor,
    splits: Sequence[int],
    has_teacher: Tensor | None = None,
) -> KickstartTerm:
    """λ-weighted cross-entropy averaged over valid steps.

    student_logits, teacher_logits: [N, sum(splits)]; weights: [N] per-sample λ; valids: [N] bool;
    has_teacher: [N] bool (defaults to weights > 0). Steps without a teacher must carry weight 0.
    """
    valids = valids.bool()
    if has_teacher is None:
        has_teacher = weights > 0
    ce = cross_entropy(teacher_logits, student_logits, splits)
    num_valid = valids.sum().clamp_min(1)
    weighted = torch.where(valids & has_teacher, weights * ce, torch.zeros_like(ce))
    loss = weighted.sum() / num_valid
    return KickstartTerm(
        loss=loss,
        ce=ce.detach(),
        supervised=valids & has_teacher,
        teacher_logits=teacher_logits.detach(),
        student_logits=student_logits.detach(),
        splits=list(splits),
        weights=weights.detach(),
    )


def masked_mean(x: Tensor, mask: Tensor) -> float:
    n = int(mask.sum())
    if n == 0:
        return float("nan")
    return float(x[mask].float().mean())


@torch.no_grad()
def term_summaries(term: KickstartTerm) -> Dict[str, float]:
    m = term.supervised
    return dict(
        loss=float(term.loss.detach()),
        kl_teacher_student=masked_mean(term.kl, m),
        cross_entropy=masked_mean(term.ce, m),
        action_agreement=masked_mean(term.agreement, m),
        teacher_entropy=masked_mean(term.teacher_entropy, m),
        supervised_fraction=float(m.float().mean()) if m.numel() else 0.0,
    )
