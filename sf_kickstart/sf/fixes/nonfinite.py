"""Fix: SF 2.1.1 steps the optimizer on a NaN/inf loss or gradient and writes NaN checkpoints. Where non-finite
numbers (NaN, ±inf) are found, and the learner's decision about them (used by `fixes.learner.FixedLearner`, and by
`sf.setup` to name a teacher's first non-finite parameter). Imports torch only.

  * `first_nonfinite`: the name of the first non-finite tensor of a (nested) collection, e.g. a teacher's parameters
    or a checkpoint's model and optimizer state;
  * `SkipGuard`: the learner's decision for one minibatch. A minibatch whose loss terms or gradients are not all
    finite is skipped (no optimizer step) and counted; `max_consecutive` skips in a row stop the run, because the
    weights, not the data, are then the likely cause.
"""

from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor


class NonFiniteError(RuntimeError):
    """Training cannot go on: too many consecutive minibatches had a non-finite loss or gradient."""


def first_nonfinite(tensors, prefix: str = "") -> Optional[str]:
    """Name of the first floating-point tensor with a non-finite entry in `tensors` (a tensor, or a dict / list /
    tuple nesting them, as state dicts do), as a dotted path; None when all are finite."""
    if isinstance(tensors, Tensor):
        bad = tensors.is_floating_point() and not bool(torch.isfinite(tensors).all())
        return (prefix or "tensor") if bad else None
    if isinstance(tensors, Mapping):
        items: Iterable[Tuple[str, object]] = tensors.items()
    elif isinstance(tensors, (list, tuple)):
        items = enumerate(tensors)
    else:
        return None
    for key, value in items:
        found = first_nonfinite(value, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


class SkipGuard:
    """Counts skipped minibatches. `check(terms, params)` before each optimizer step: None to step, else the reason
    to skip (which loss term, or which parameter's gradient, is non-finite); NonFiniteError on the
    `max_consecutive`-th skip in a row."""

    def __init__(self, max_consecutive: int):
        if max_consecutive < 1:
            raise ValueError(f"max_consecutive must be >= 1, got {max_consecutive}")
        self.max_consecutive = max_consecutive
        self.skipped = 0  # over the whole run (train/nonfinite_skipped)
        self.consecutive = 0

    def check(self, terms: Dict[str, Tensor], named_params: Sequence[Tuple[str, torch.nn.Parameter]]) -> Optional[str]:
        reason = self._reason(terms, named_params)
        if reason is None:
            self.consecutive = 0
            return None
        self.skipped += 1
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteError(f"{self.consecutive} consecutive minibatches skipped (last: {reason})")
        return reason

    @staticmethod
    def _reason(terms: Dict[str, Tensor], named_params) -> Optional[str]:
        bad_terms = [name for name, value in terms.items() if not bool(torch.isfinite(value.detach()).all())]
        if bad_terms:
            return f"non-finite {', '.join(bad_terms)} loss term" + ("s" if len(bad_terms) > 1 else "")
        grads = [(name, p.grad) for name, p in named_params if p.grad is not None]
        if not grads:
            return None
        norms = torch.stack(torch._foreach_norm([g.detach() for _, g in grads]))
        if bool(torch.isfinite(norms).all()):
            return None
        bad = next(name for (name, _), n in zip(grads, norms) if not bool(torch.isfinite(n)))
        return f"non-finite gradient (first: {bad!r}; loss terms finite)"
