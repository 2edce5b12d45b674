"""The kickstart term on Sample Factory's own action distributions, for every action space SF has a distribution for:
Discrete, 1-D Box (diagonal Gaussian) and Tuples of them; and the teacher's value in the student's critic units.

  * `action_heads(space)`: the heads of SF's `action_logits`, in its order, each `calc_num_action_parameters` wide
    (a Discrete's n logits; a Box's n means then n log-stds; a Tuple's subspaces concatenated, nested Tuples
    flattened). Anything else (MultiBinary, MultiDiscrete, a Box of rank ≠ 1) is an `UnsupportedActionSpace`.
  * `policy_term(loss, space, heads, teacher_logits, student_distribution, ...)`: the teacher's distribution is SF's
    `get_action_distribution` on the stored teacher logits (detached), the student's is the one SF's learner built
    (both std parameterisations: `--adaptive_stddev=True` reads mean and log-std from the head; False a learned
    log-std parameter, with `--continuous_tanh_scale` already applied to the means by SF's parameterisation; the
    clamp of σ to [1e-4, 1e4] is SF's). Per head (`kickstart.loss` defines the divergences):
      categorical, cross_entropy or mse_mean   `kickstart.loss.cross_entropy` on the raw logits (the paper's formula)
      categorical or Gaussian, reverse_kl      SF's `student.kl_divergence(teacher)` = KL(π_S ‖ π_T)
      Gaussian, cross_entropy                  SF's `teacher.kl_divergence(student) + teacher.entropy()` (closed form,
                                               summed over dimensions by torch's Independent)
      Gaussian, mse_mean                       `kickstart.loss.mean_squared_error` on SF's `means`
    summed over heads. Diagnostics: KL(π_T ‖ π_S), H(π_T, π_S), H(π_T) summed over heads; greedy-action agreement
    over the categorical heads only (a Gaussian head has no greedy action to agree on: a Box-only space has no
    `action_agreement`); for Gaussian heads the mean over their dimensions of (μ_S − μ_T)², σ_T and σ_S.
  * `distribution_logits(student_distribution)`: SF's `action_logits` layout rebuilt from a distribution.
  * `describe_actions(space)`: `Discrete(7)`, `Box(6)`, `Tuple(...)`, as logs and the zoo listing show a space.
  * `student_value_targets(teacher_values, returns_normalizer)`: the teacher's value (return units) in the units of
    the student's critic output: with `--normalize_returns` normalised by the student's running return statistics
    (SF's own normaliser, its statistics not updated), else as it is.

May import: Sample Factory's distribution code, the ground floor, `kickstart`.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from gymnasium import spaces
from torch import Tensor

from sample_factory.algo.utils.action_distributions import calc_num_action_parameters, get_action_distribution

from sf_kickstart.kickstart.loss import (
    CATEGORICAL,
    GAUSSIAN,
    MSE_MEAN,
    REVERSE_KL,
    Head,
    KickstartTerm,
    UnsupportedActionSpace,
    categorical_diagnostics,
    cross_entropy,
    head_sizes,
    kickstart_term,
    mean_squared_error,
    smooth_teacher,
)

SUPPORTED = "Discrete, a 1-D Box (diagonal Gaussian) or a Tuple of them"


def action_heads(action_space) -> List[Head]:
    """The heads of SF's `action_logits` for the space, in order (UnsupportedActionSpace for other spaces)."""
    if isinstance(action_space, spaces.Tuple):
        return [head for sub in action_space.spaces for head in action_heads(sub)]
    if isinstance(action_space, spaces.Discrete):
        return [Head(CATEGORICAL, int(calc_num_action_parameters(action_space)))]
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return [Head(GAUSSIAN, int(calc_num_action_parameters(action_space)))]
    raise UnsupportedActionSpace(
        f"Kickstarting is defined for Sample Factory's action distributions: {SUPPORTED}; got {action_space}"
    )


def describe_actions(space) -> str:
    """`Discrete(7)`, `Box(6)` (a diagonal Gaussian over 6 dimensions), `Tuple(Discrete(3), Box(2))`: what logs and
    listings show of an action space."""
    if isinstance(space, spaces.Tuple):
        return "Tuple(" + ", ".join(describe_actions(s) for s in space.spaces) + ")"
    if isinstance(space, spaces.Box):
        return f"Box({', '.join(str(n) for n in space.shape)})"
    return str(space)


def num_action_parameters(action_space) -> int:
    """Width of SF's `action_logits` for the space (and of the teacher logits in the buffers)."""
    return int(calc_num_action_parameters(action_space))


def head_distributions(distribution) -> List:
    """SF's per-head distributions in `action_logits` order (a Tuple's parts, nested Tuples flattened)."""
    if hasattr(distribution, "distributions"):
        return [d for part in distribution.distributions for d in head_distributions(part)]
    return [distribution]


def distribution_logits(distribution) -> Tensor:
    """SF's `action_logits` of a distribution: raw logits of a categorical, [means, log-stds] of a Gaussian."""
    parts = []
    for d in head_distributions(distribution):
        parts.append(d.raw_logits if hasattr(d, "raw_logits") else torch.cat([d.means, d.log_std], dim=-1))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


def head_divergence(loss: str, head: Head, teacher, student) -> Tensor:
    """Per-sample divergence of one head (teacher: SF's distribution on detached logits)."""
    if loss == REVERSE_KL:
        return student.kl_divergence(teacher)
    if head.kind == CATEGORICAL:
        return cross_entropy(teacher.raw_logits, student.raw_logits, [head.size])
    if loss == MSE_MEAN:
        return mean_squared_error(student.means, teacher.means)
    return teacher.kl_divergence(student) + teacher.entropy()


def gaussian_diagnostics(teachers: Sequence, students: Sequence) -> Dict[str, Tensor]:
    """Gaussian heads, per sample: KL(π_T ‖ π_S), H(π_T) and H(π_T, π_S) summed over heads; the mean over all their
    dimensions of (μ_S − μ_T)², σ_T and σ_S."""
    kl = sum(t.kl_divergence(s) for t, s in zip(teachers, students))
    h = sum(t.entropy() for t in teachers)
    cat = lambda ds, attr: torch.cat([getattr(d, attr) for d in ds], dim=-1)  # noqa: E731
    return dict(
        kl_teacher_student=kl, cross_entropy=kl + h, teacher_entropy=h,
        mean_squared_error=mean_squared_error(cat(students, "means"), cat(teachers, "means")),
        teacher_std=cat(teachers, "stddevs").mean(dim=-1), student_std=cat(students, "stddevs").mean(dim=-1),
    )


def diagnostics(heads: Sequence[Head], teachers: Sequence, students: Sequence) -> Dict[str, Tensor]:
    """The per-sample diagnostics of `kickstart.loss.KickstartTerm`, categorical and Gaussian heads together."""
    parts = []
    cat_idx = [i for i, h in enumerate(heads) if h.kind == CATEGORICAL]
    if cat_idx:
        logits = lambda ds: torch.cat([ds[i].raw_logits for i in cat_idx], dim=-1)  # noqa: E731
        parts.append(categorical_diagnostics(logits(teachers), logits(students), head_sizes(heads, CATEGORICAL)))
    gauss_idx = [i for i, h in enumerate(heads) if h.kind == GAUSSIAN]
    if gauss_idx:
        parts.append(gaussian_diagnostics([teachers[i] for i in gauss_idx], [students[i] for i in gauss_idx]))
    out = dict(parts[0])
    for part in parts[1:]:  # summed over heads; the kind-specific ones appear once
        for name, x in part.items():
            out[name] = out[name] + x if name in out else x
    return out


def policy_term(
    loss: str, action_space, heads: Sequence[Head], teacher_logits: Tensor, student_distribution,
    weights: Tensor, valids: Tensor, has_teacher: Optional[Tensor] = None, smoothing: float = 0.0,
) -> KickstartTerm:
    """λ-weighted `--kickstart_loss` divergence of the teacher logits [N, Σ sizes] from the student's SF distribution,
    averaged over valid steps. Gradient flows to the student only. `smoothing` ε > 0: the target of each categorical
    head is (1 − ε)·π_T + ε·uniform (`--kickstart_teacher_smoothing`), in the loss and in the diagnostics."""
    teacher_logits = smooth_teacher(teacher_logits.detach(), heads, smoothing)
    teachers = head_distributions(get_action_distribution(action_space, teacher_logits))
    students = head_distributions(student_distribution)
    total = None
    for head, t, s in zip(heads, teachers, students):
        d = head_divergence(loss, head, t, s)
        total = d if total is None else total + d
    student_logits = distribution_logits(student_distribution).detach()

    def diagnose():  # on the student's distribution rebuilt from detached logits
        return diagnostics(heads, teachers, head_distributions(get_action_distribution(action_space, student_logits)))

    return kickstart_term(total, weights, valids, has_teacher, diagnose)


def student_value_targets(teacher_values: Tensor, returns_normalizer) -> Tensor:
    """The teacher's values (return units) in the units of the student's critic output (SF's returns normaliser,
    applied without updating its running statistics; None: no normalisation)."""
    targets = teacher_values.detach().reshape(-1, 1).clone().float()
    if returns_normalizer is not None:
        training = returns_normalizer.training
        returns_normalizer.train(False)  # SF's normaliser updates its statistics in training mode
        try:
            returns_normalizer(targets)  # in place
        finally:
            returns_normalizer.train(training)
    return targets.reshape(-1)
