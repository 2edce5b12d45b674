"""The kickstarting term and value distillation as pure functions of per-sample tensors, weights and the valid mask.

    L_ks = mean over valid steps t of  λ(t) · D(π_T(·|x_t), π_S(·|x_t))

D is chosen by `--kickstart_loss` (`KICKSTART_LOSSES`), per action head and summed over the heads of the space:
  cross_entropy (default, the paper's)  H(π_T, π_S) = KL(π_T ‖ π_S) + H(π_T). For a categorical head
                -Σ_a π_T(a) log π_S(a) (`cross_entropy` below: the formula of every earlier version, bit for bit);
                for a diagonal Gaussian the closed form KL(π_T ‖ π_S) + H(π_T), summed over its dimensions. Its
                gradient w.r.t. the student equals that of KL(π_T ‖ π_S) (the teacher's entropy is a constant).
  reverse_kl    KL(π_S ‖ π_T) (SkillHack's, Metta's), categorical and Gaussian heads alike.
  mse_mean      rsl_rl's / skrl's behaviour-cloning loss: per Gaussian head the mean over its dimensions of
                (μ_S − μ_T)² (`mean_squared_error`; torch's `F.mse_loss` of the mean actions); a categorical head in a
                mixed Tuple keeps its cross-entropy (the categorical's behaviour-cloning loss), so no head goes
                unsupervised. A space without a Gaussian head is refused (`check_loss_fits`).
With `--kickstart_teacher_smoothing=ε` the categorical target is (1 − ε)·π_T + ε·uniform (`smooth_teacher`), in every
divergence and diagnostic.
The Gaussian parts are built on Sample Factory's own distributions (`sf.distillation`, which may import SF); this
module holds the categorical formulas, the weighting and the summaries.

λ(t) is per sample: λ_i = α·ρ_i for the teacher i that supervised step t, and 0 for steps whose task has no teacher,
so those steps add nothing. Steps are averaged over *all* valid steps, exactly like Sample Factory averages its
policy loss, so λ is on the same scale as the RL loss (`weighted_mean`).

Value distillation (`--kickstart_value_coeff=c`, default 0: off): with V_S the student's critic output and V_T the
teacher's value estimate on the same step (from the same teacher forward at rollout), in the units of the student's
critic (`sf.distillation.student_value_targets`),

    L_v = mean over valid steps t of  c · λ(t) · (V_S(x_t) − V_T(x_t))²

with the same per-sample λ(t) as the policy term (so it decays with λ, and a step without a teacher adds nothing),
averaged over all valid steps like the policy term. It is added to SF's value loss; the gradient reaches the
student's critic only (V_T is a constant).

Action heads (`Head`): Discrete (one categorical), 1-D Box (a diagonal Gaussian, both of SF's std
parameterisations) and Tuples of them, laid out in SF's `action_logits` order (`sf.distillation.action_heads`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from sf_kickstart.errors import UserError

CROSS_ENTROPY, REVERSE_KL, MSE_MEAN = "cross_entropy", "reverse_kl", "mse_mean"
KICKSTART_LOSSES = (CROSS_ENTROPY, REVERSE_KL, MSE_MEAN)  # `--kickstart_loss`, the paper's first
CATEGORICAL, GAUSSIAN = "categorical", "gaussian"


class UnsupportedActionSpace(UserError):
    pass


class KickstartLossError(UserError):
    """A `--kickstart_loss` not defined for the student's action space, or an impossible `--kickstart_value_coeff`."""


@dataclass(frozen=True)
class Head:
    """One action head of SF's `action_logits`: `size` consecutive values (a categorical's n logits; a Gaussian's
    n means then n log-stds)."""

    kind: str  # CATEGORICAL | GAUSSIAN
    size: int

    @property
    def dims(self) -> int:
        """Actions of a categorical head, dimensions of a Gaussian one."""
        return self.size // 2 if self.kind == GAUSSIAN else self.size


def head_sizes(heads: Sequence[Head], kind: Optional[str] = None) -> List[int]:
    return [h.size for h in heads if kind is None or h.kind == kind]


def check_loss_fits(loss: str, heads: Sequence[Head], space) -> None:
    """KickstartLossError for an unknown `--kickstart_loss`, or mse_mean on a space without a Gaussian head."""
    if loss not in KICKSTART_LOSSES:
        raise KickstartLossError(f"--kickstart_loss must be one of {'|'.join(KICKSTART_LOSSES)}, got {loss!r}")
    if loss == MSE_MEAN and not any(h.kind == GAUSSIAN for h in heads):
        raise KickstartLossError(
            f"--kickstart_loss=mse_mean is a loss on the action mean of continuous (Box) heads, and the action space "
            f"{space} has none: use --kickstart_loss=cross_entropy (the paper's) or reverse_kl"
        )


def check_value_coeff(coeff: float) -> None:
    if not (math.isfinite(coeff) and coeff >= 0):
        raise KickstartLossError(f"--kickstart_value_coeff must be a finite number >= 0 (0: off), got {coeff}")


def _split(logits: Tensor, splits: Sequence[int]):
    if len(splits) == 1:
        return (logits,)
    return torch.split(logits, list(splits), dim=-1)


def check_smoothing(smoothing: float, heads: Optional[Sequence[Head]] = None, space=None) -> None:
    """`--kickstart_teacher_smoothing`: a finite ε in [0, 1), and > 0 only where there is a categorical head (checked
    when the heads are given)."""
    if not (math.isfinite(smoothing) and 0 <= smoothing < 1):
        raise KickstartLossError(f"--kickstart_teacher_smoothing must be a number in [0, 1) (0: off), got {smoothing}")
    if smoothing > 0 and heads is not None and not any(h.kind == CATEGORICAL for h in heads):
        raise KickstartLossError(
            f"--kickstart_teacher_smoothing={smoothing} mixes a uniform distribution into the teacher's categorical "
            f"policy, and the action space {space} has no categorical (Discrete) head: leave it at 0"
        )


def smooth_teacher(teacher_logits: Tensor, heads: Sequence[Head], smoothing: float) -> Tensor:
    """The logits of the target (1 − ε)·π_T + ε·uniform on every categorical head (label smoothing of the teacher;
    Gaussian heads unchanged). ε = 0 returns the logits as they are."""
    if smoothing <= 0:
        return teacher_logits
    parts = _split(teacher_logits, head_sizes(heads))
    out = [torch.log((1 - smoothing) * F.softmax(part, dim=-1) + smoothing / head.size) if head.kind == CATEGORICAL
           else part for head, part in zip(heads, parts)]
    return out[0] if len(out) == 1 else torch.cat(out, dim=-1)


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


def mean_squared_error(student_means: Tensor, teacher_means: Tensor) -> Tensor:
    """Per-sample mean over dimensions of (μ_S − μ_T)². Gradient flows to the student only."""
    return (student_means - teacher_means.detach()).pow(2).mean(dim=-1)


def weighted_mean(per_sample: Tensor, weights: Tensor, valids: Tensor, has_teacher: Tensor) -> Tuple[Tensor, Tensor]:
    """(Σ over valid, supervised steps of weight · value) / number of valid steps, and the supervised mask."""
    supervised = valids.bool() & has_teacher
    num_valid = valids.bool().sum().clamp_min(1)
    weighted = torch.where(supervised, weights * per_sample, torch.zeros_like(per_sample))
    return weighted.sum() / num_valid, supervised


@dataclass
class KickstartTerm:
    """The loss plus what its diagnostics need; the diagnostics are computed only when asked for (summaries)."""

    loss: Tensor  # scalar, differentiable w.r.t. the student
    divergence: Tensor  # per-sample D(π_T, π_S) of --kickstart_loss (detached)
    supervised: Tensor  # bool per sample: valid and has a teacher
    weights: Tensor  # per-sample λ (detached)
    #: per-sample diagnostics by summary name (kl_teacher_student, cross_entropy, teacher_entropy; action_agreement
    #: with a categorical head; mean_squared_error, teacher_std, student_std with a Gaussian head)
    diagnose: Callable[[], Dict[str, Tensor]] = field(repr=False)
    _diagnostics: Optional[Dict[str, Tensor]] = field(default=None, repr=False)

    @property
    def diagnostics(self) -> Dict[str, Tensor]:
        if self._diagnostics is None:
            with torch.no_grad():
                self._diagnostics = self.diagnose()
        return self._diagnostics

    @property
    def kl(self) -> Tensor:  # KL(π_T ‖ π_S), summed over heads
        return self.diagnostics["kl_teacher_student"]

    @property
    def agreement(self) -> Optional[Tensor]:  # None: no categorical head
        return self.diagnostics.get("action_agreement")


def kickstart_term(
    divergence: Tensor, weights: Tensor, valids: Tensor, has_teacher: Optional[Tensor],
    diagnose: Callable[[], Dict[str, Tensor]],
) -> KickstartTerm:
    """The λ-weighted mean of a per-sample divergence over valid steps (has_teacher defaults to weights > 0; steps
    without a teacher must carry weight 0)."""
    if has_teacher is None:
        has_teacher = weights > 0
    loss, supervised = weighted_mean(divergence, weights, valids, has_teacher)
    return KickstartTerm(loss, divergence.detach(), supervised, weights.detach(), diagnose)


def categorical_diagnostics(teacher_logits: Tensor, student_logits: Tensor, splits: Sequence[int]) -> Dict[str, Tensor]:
    """Per sample, summed over categorical heads: H(π_T, π_S), H(π_T), their difference KL(π_T ‖ π_S), and whether
    the greedy actions agree on every head."""
    t, s = teacher_logits.detach(), student_logits.detach()
    ce, h = cross_entropy(t, s, splits), entropy(t, splits)
    agree = agreement(t, s, splits)
    return dict(kl_teacher_student=ce - h, cross_entropy=ce, teacher_entropy=h, action_agreement=agree)


def kickstart_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    weights: Tensor,
    valids: Tensor,
    splits: Sequence[int],
    has_teacher: Tensor | None = None,
) -> KickstartTerm:
    """The paper's term on categorical heads: λ-weighted cross-entropy averaged over valid steps.

    student_logits, teacher_logits: [N, sum(splits)]; weights: [N] per-sample λ; valids: [N] bool;
    has_teacher: [N] bool (defaults to weights > 0). Steps without a teacher must carry weight 0.
    """
    ce = cross_entropy(teacher_logits, student_logits, splits)
    return kickstart_term(
        ce, weights, valids, has_teacher, lambda: categorical_diagnostics(teacher_logits, student_logits, splits)
    )


@dataclass
class ValueTerm:
    loss: Tensor  # scalar: mean over valid steps of c·λ·(V_S − V_T)², differentiable w.r.t. the student's critic
    squared_error: Tensor  # per-sample (V_S − V_T)² (detached)
    supervised: Tensor


def value_distillation(
    student_values: Tensor, teacher_values: Tensor, weights: Tensor, valids: Tensor, has_teacher: Tensor
) -> ValueTerm:
    """weights: per-sample c·λ. student_values, teacher_values: [N] in the units of the student's critic."""
    squared = (student_values.reshape(-1) - teacher_values.reshape(-1).detach()).pow(2)
    loss, supervised = weighted_mean(squared, weights, valids, has_teacher)
    return ValueTerm(loss, squared.detach(), supervised)


def masked_mean(x: Tensor, mask: Tensor) -> float:
    n = int(mask.sum())
    if n == 0:
        return float("nan")
    return float(x[mask].float().mean())


def per_task_means(x: Tensor, task_idx: Tensor, mask: Tensor, task_names: Sequence[str]) -> Dict[str, float]:
    """{task: mean of x over the masked samples whose task id is the task's index}; tasks without one: left out."""
    means = {task: masked_mean(x, mask & (task_idx == k)) for k, task in enumerate(task_names)}
    return {task: v for task, v in means.items() if not math.isnan(v)}


@torch.no_grad()
def term_summaries(term: KickstartTerm) -> Dict[str, float]:
    m = term.supervised
    out = dict(loss=float(term.loss.detach()))
    out.update({name: masked_mean(x, m) for name, x in term.diagnostics.items()})
    out["supervised_fraction"] = float(m.float().mean()) if m.numel() else 0.0
    return out


@torch.no_grad()
def value_summaries(term: ValueTerm) -> Dict[str, float]:
    return dict(value_loss=float(term.loss.detach()), value_mse=masked_mean(term.squared_error, term.supervised))
