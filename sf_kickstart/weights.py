"""The kickstart weights of one policy: λ_i(t) = α(t) · ρ_i, owned by one object.

`KickstartWeights` holds
  * the schedule (`schedules.KickstartSchedule`, from the run's flags): the shape of α over env frames;
  * α's scale (initially `--kickstart_lambda`), which PBT mutates;
  * ρ_i per teacher (initially the `--teachers` map's `rho`, default 1), which PBT mutates;
and computes λ_i (`lambdas`), is saved in and restored from the checkpoint (`state_dict` / `load_state_dict`, the
checkpoint's `"kickstart"` entry), and is what PBT and anything else outside the learner set through
`set_hyperparameters` / read through `hyperparameters` (keys `HYPERPARAMETERS`, the same names as PBT's cfg keys).
The run's `cfg` is read once, here, and never rewritten.

Adaptive state (a schedule that reacts to training, per teacher) belongs here too: add it as attributes of this
object, include it in `state_dict()` under its own key and restore it in `load_state_dict()` (missing in older
checkpoints: keep the initial value), and fold it into `lambdas()`; every consumer (learner, summaries, checkpoint,
PBT) already goes through these methods.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from sample_factory.utils.utils import log

from sf_kickstart.schedules import KickstartSchedule

ALPHA_SCALE_KEY = "kickstart_lambda"
RHO_KEY = "kickstart_rho"
#: what PBT mutates (its cfg keys): α's scale and {teacher name: ρ_i}
HYPERPARAMETERS = (ALPHA_SCALE_KEY, RHO_KEY)


class KickstartWeights:
    def __init__(self, schedule: KickstartSchedule, teacher_names: Sequence[str], rho: Sequence[float]):
        self.schedule = schedule
        self.teacher_names = list(teacher_names)
        self.alpha_scale = float(schedule.lambda0)
        self.rho = np.clip(np.asarray(rho, dtype=np.float64).reshape(-1), 0.0, None)
        if len(self.rho) != len(self.teacher_names):
            raise ValueError(f"{len(self.rho)} rho values for {len(self.teacher_names)} teachers")

    @staticmethod
    def from_cfg(cfg, specs) -> "KickstartWeights":
        """The run's schedule flags and the teachers' initial ρ (specs: teachers.TeacherSpec)."""
        return KickstartWeights(KickstartSchedule.from_cfg(cfg), [s.name for s in specs], [s.rho for s in specs])

    # ------------------------------------------------------------------------------------------------------- λ
    def alpha(self, frames: float) -> float:
        return self.schedule.alpha(frames, scale=self.alpha_scale)

    def lambdas(self, frames: float) -> np.ndarray:
        """λ_i per teacher, in teacher order."""
        return self.alpha(frames) * self.rho

    # ------------------------------------------------------------------------------------------ set from outside
    def hyperparameters(self) -> Dict:
        return {ALPHA_SCALE_KEY: self.alpha_scale, RHO_KEY: dict(zip(self.teacher_names, map(float, self.rho)))}

    def set_hyperparameters(self, alpha_scale: Optional[float] = None, rho=None) -> None:
        """New α scale and/or ρ ({teacher name: ρ} — names not in this run are ignored — or one value per teacher).
        Values are clipped at 0."""
        if alpha_scale is not None:
            self.alpha_scale = max(0.0, float(alpha_scale))
        if isinstance(rho, Mapping):
            for name, value in rho.items():
                if name in self.teacher_names:
                    self.rho[self.teacher_names.index(name)] = max(0.0, float(value))
        elif rho is not None:
            rho = np.asarray(rho, dtype=np.float64).reshape(-1)
            if rho.shape != self.rho.shape:
                raise ValueError(f"{rho.shape[0]} rho values for {len(self.teacher_names)} teachers")
            self.rho = np.clip(rho, 0.0, None)

    def pop_hyperparameters(self, cfg_update: Dict) -> Dict:
        """Apply and remove the keys of HYPERPARAMETERS from a cfg update (PBT's new cfg); returns the rest."""
        rest = {k: v for k, v in cfg_update.items() if k not in HYPERPARAMETERS}
        if any(k in cfg_update for k in HYPERPARAMETERS):
            self.set_hyperparameters(cfg_update.get(ALPHA_SCALE_KEY), cfg_update.get(RHO_KEY))
        return rest

    # ------------------------------------------------------------------------------------------------ checkpoint
    def state_dict(self, frames: float) -> Dict:
        """The checkpoint's "kickstart" entry (alpha and env_steps record the values at save time)."""
        return dict(
            schedule=self.schedule.state_dict(),
            alpha_scale=self.alpha_scale,
            alpha=self.alpha(frames),
            rho=self.hyperparameters()[RHO_KEY],
            env_steps=int(frames),
        )

    def load_state_dict(self, state: Mapping) -> None:
        """Restore α scale and ρ. The schedule comes from the run's flags; a different saved one is logged."""
        self.set_hyperparameters(state["alpha_scale"], state["rho"])
        saved = state.get("schedule")
        if saved is not None and dict(saved) != self.schedule.state_dict():
            log.warning(f"Kickstart schedule changed since the checkpoint: {saved} -> {self.schedule.state_dict()}")
        log.info(f"Restored kickstart weights: alpha_scale={self.alpha_scale}, rho={self.hyperparameters()[RHO_KEY]}")
