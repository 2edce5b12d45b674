"""λ over env frames.

    λ_i(t) = α(t) · ρ_i          α(t) = kickstart_lambda · shape(t)

shape(t) by `--kickstart_schedule`:
  none         0 (no kickstart term; teachers, if given, are still run and monitored)
  constant     1
  linear       max(0, 1 - t / kickstart_end_frames)                          (paper: linear to 0)
  exponential  max(kickstart_floor / kickstart_lambda, kickstart_decay ** (t / kickstart_decay_frames))
               i.e. α(t) = max(kickstart_floor, kickstart_lambda · decay^(t/decay_frames))
  adaptive     1; each teacher's λ_i is further multiplied by its own factor, which follows the student's score on
               that teacher's tasks (`kickstart.adaptive`, state in `weights.KickstartWeights`)
  reengage     1; each task's λ is further multiplied by its own factor g_k, which follows the student's current
               score on that task and comes back when the student falls below its teacher there
               (`kickstart.reengage`, state in `weights.KickstartWeights`)

Under PBT (`--with_pbt=True`) α's scale `kickstart_lambda` and every ρ_i are hyperparameters that PBT mutates: with
the constant schedule PBT controls λ entirely (the paper's PBT-λ); with linear/exponential PBT scales the schedule.

t is the learner's env-frame counter (`Learner.env_steps`, restored on resume), so a resumed run continues λ where
it was. The schedule's own state (its parameters and the last α, ρ) is saved in every checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict

from sf_kickstart.errors import UserError

SCHEDULES = ("none", "constant", "linear", "exponential", "adaptive", "reengage")
ADAPTIVE = "adaptive"
REENGAGE = "reengage"
#: the schedules whose λ follows the student's running scores (they need the teachers' scores G_T)
SCORE_DRIVEN = (ADAPTIVE, REENGAGE)


class ScheduleError(UserError):
    pass


@dataclass
class KickstartSchedule:
    kind: str = "none"
    lambda0: float = 1.0
    end_frames: float = 0.0
    decay: float = 0.5
    decay_frames: float = 1e6
    floor: float = 0.0

    def __post_init__(self):
        self.validate()

    @staticmethod
    def from_cfg(cfg) -> "KickstartSchedule":
        return KickstartSchedule(
            kind=cfg.kickstart_schedule,
            lambda0=float(cfg.kickstart_lambda),
            end_frames=float(cfg.kickstart_end_frames),
            decay=float(cfg.kickstart_decay),
            decay_frames=float(cfg.kickstart_decay_frames),
            floor=float(cfg.kickstart_floor),
        )

    def validate(self) -> None:
        if self.kind not in SCHEDULES:
            raise ScheduleError(f"--kickstart_schedule={self.kind!r}: expected one of {', '.join(SCHEDULES)}")
        if not math.isfinite(self.lambda0) or self.lambda0 < 0:
            raise ScheduleError(f"--kickstart_lambda={self.lambda0}: λ must be a finite number >= 0")
        if self.kind == "linear" and not (self.end_frames > 0 and math.isfinite(self.end_frames)):
            raise ScheduleError(
                f"--kickstart_schedule=linear needs --kickstart_end_frames > 0 (the frame where λ reaches 0), "
                f"got {self.end_frames}"
            )
        if self.kind == "exponential":
            if not (0.0 < self.decay < 1.0):
                raise ScheduleError(f"--kickstart_decay={self.decay}: exponential decay needs 0 < decay < 1")
            if not (self.decay_frames > 0 and math.isfinite(self.decay_frames)):
                raise ScheduleError(f"--kickstart_decay_frames={self.decay_frames}: must be > 0")
            if not (0.0 <= self.floor <= self.lambda0):
                raise ScheduleError(
                    f"--kickstart_floor={self.floor}: the floor must be in [0, kickstart_lambda={self.lambda0}]"
                )

    def shape(self, frames: float) -> float:
        if self.kind == "none":
            return 0.0
        if self.kind in ("constant", *SCORE_DRIVEN):
            return 1.0
        if self.kind == "linear":
            return max(0.0, 1.0 - frames / self.end_frames)
        # exponential
        return self.decay ** (frames / self.decay_frames)

    def alpha(self, frames: float, scale: float | None = None) -> float:
        """α(t). `scale` replaces kickstart_lambda (PBT mutates it); default is the configured λ0."""
        lam = self.lambda0 if scale is None else float(scale)
        a = lam * self.shape(frames)
        if self.kind == "exponential":
            a = max(min(self.floor, lam), a)
        return max(0.0, a)

    def state_dict(self) -> Dict:
        return asdict(self)

    @staticmethod
    def from_state_dict(state: Dict) -> "KickstartSchedule":
        return KickstartSchedule(**state)
