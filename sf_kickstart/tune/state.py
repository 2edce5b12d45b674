"""The one place where a Tune trial reads and writes a member's Sample Factory checkpoint: its frames, optimizer
learning rate and kickstart state (α scale, ρ_i: `checkpoint["kickstart"]`, written by sf_kickstart.learner).

A trial resumes Sample Factory from its checkpoint once per perturbation interval. On resume the learner takes the
learning rate from the checkpoint (`curr_lr`, and the optimizer's param groups) and α's scale and ρ_i from
`checkpoint["kickstart"]`, not from the command line; so a member's (possibly just mutated) values are written into
its checkpoint before each interval. The entropy cost lives only in the config and goes on the command line.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

import torch

from sf_kickstart.tune.space import ALPHA_KEY, RHO_PREFIX


def checkpoint_state(path: str, hp: Optional[Dict[str, float]] = None) -> Dict[str, float]:
    """Write `hp`'s learning rate, α scale and ρ_i into the checkpoint at `path` (when given), then return what the
    checkpoint holds: env_steps, train_step, learning_rate, and kickstart_lambda / kickstart_rho_<teacher> when it
    has a kickstart state."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    ks = ckpt.get("kickstart")
    if hp:
        if "learning_rate" in hp:
            ckpt["curr_lr"] = float(hp["learning_rate"])
            for group in ckpt["optimizer"].get("param_groups", []):
                group["lr"] = float(hp["learning_rate"])
        if ks is not None:
            ks["alpha_scale"] = float(hp.get(ALPHA_KEY, ks["alpha_scale"]))
            ks["rho"] = {name: float(hp.get(RHO_PREFIX + name, rho)) for name, rho in ks["rho"].items()}
        tmp = os.path.join(os.path.dirname(path), ".writing_" + os.path.basename(path))  # not a checkpoint_* name
        torch.save(ckpt, tmp)
        os.replace(tmp, path)  # never a half-written checkpoint
    state = dict(env_steps=int(ckpt["env_steps"]), train_step=int(ckpt["train_step"]), learning_rate=float(ckpt["curr_lr"]))
    if ks is not None:
        state[ALPHA_KEY] = float(ks["alpha_scale"])
        state.update({RHO_PREFIX + name: float(rho) for name, rho in ks["rho"].items()})
    return state
