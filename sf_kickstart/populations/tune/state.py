"""The one place where a Tune trial reads and writes a member's Sample Factory checkpoint: its frames, optimizer
learning rate and kickstart weights (α scale, ρ_i: the checkpoint's `weights.CHECKPOINT_KEY` entry, read and written
by `weights.KickstartWeights` itself).

A trial resumes Sample Factory from its checkpoint once per perturbation interval. On resume the learner takes the
learning rate from the checkpoint (`curr_lr`, and the optimizer's param groups) and α's scale and ρ_i from its
kickstart entry, not from the command line; so a member's (possibly just mutated) values are written into its
checkpoint before each interval. The entropy cost lives only in the config and goes on the command line.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

from sf_kickstart.checkpoints import load_checkpoint
from sf_kickstart.populations.tune.space import ALPHA_KEY, RHO_KEY, RHO_PREFIX
from sf_kickstart.kickstart.weights import CHECKPOINT_KEY, KickstartWeights


def _set_learning_rate(ckpt: Dict, lr: float) -> None:
    ckpt["curr_lr"] = float(lr)
    for group in ckpt["optimizer"].get("param_groups", []):
        group["lr"] = float(lr)


def checkpoint_state(path: str, hp: Optional[Dict[str, float]] = None) -> Dict[str, float]:
    """Write `hp`'s learning rate, α scale and ρ_i into the checkpoint at `path` (when given), then return what the
    checkpoint holds: env_steps, train_step, learning_rate, and kickstart_lambda / kickstart_rho_<teacher> when it
    has kickstart weights."""
    import torch

    ckpt = load_checkpoint(path)
    entry = ckpt.get(CHECKPOINT_KEY)
    weights = KickstartWeights.from_state_dict(entry) if entry is not None else None
    if hp:
        if "learning_rate" in hp:
            _set_learning_rate(ckpt, hp["learning_rate"])
        if weights is not None:
            rho = {name: hp[RHO_PREFIX + name] for name in weights.teacher_names if RHO_PREFIX + name in hp}
            weights.set_hyperparameters(alpha_scale=hp.get(ALPHA_KEY), rho=rho)
            ckpt[CHECKPOINT_KEY] = weights.state_dict(ckpt["env_steps"])
        tmp = os.path.join(os.path.dirname(path), ".writing_" + os.path.basename(path))  # not a checkpoint_* name
        torch.save(ckpt, tmp)
        os.replace(tmp, path)  # never a half-written checkpoint
    state = dict(env_steps=int(ckpt["env_steps"]), train_step=int(ckpt["train_step"]), learning_rate=float(ckpt["curr_lr"]))
    if weights is not None:
        values = weights.hyperparameters()
        state[ALPHA_KEY] = float(values[ALPHA_KEY])
        state.update({RHO_PREFIX + name: float(rho) for name, rho in values[RHO_KEY].items()})
    return state
