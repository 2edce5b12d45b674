"""The kickstart weights of one policy: λ_i(t) = α(t) · ρ_i, owned by one object.

`KickstartWeights` holds
  * the schedule (`schedules.KickstartSchedule`, from the run's flags): the shape of α over env frames;
  * α's scale (initially `--kickstart_lambda`), which PBT mutates;
  * ρ_i per teacher (initially the `--teachers` map's `rho`, default 1), which PBT mutates;
and computes λ_i (`lambdas`), is saved in and restored from the checkpoint (`state_dict` / `load_state_dict`, the
checkpoint's `"kickstart"` entry), and is what PBT and anything else outside the learner set through
`set_hyperparameters` / read through `hyperparameters` (keys `HYPERPARAMETERS`, the same names as PBT's cfg keys).
The run's `cfg` is read once, here, and never rewritten.

Adaptive λ (`--kickstart_schedule=adaptive`, `sf_kickstart.adaptive`) is state of this object too: per teacher the
factor f_i = running min over time of clip(1 − G_S,i / G_T,i, 0, 1) (G_T,i: teacher i's score on its tasks, given at
construction; G_S,i: the student's running score on them, fed by `observe_student_scores`), so

    λ_i(t) = α · ρ_i · f_i(t)        (non-increasing: once the student has matched its teacher, λ_i stays 0)

f_i is saved under the checkpoint entry's "adaptive" key and restored on resume (missing in older checkpoints: 1);
the G_T,i it is computed against go under "adaptive_teacher_scores" (`from_state_dict` rebuilds the weights from them).

Re-engaging λ (`--kickstart_schedule=reengage`, `kickstart.reengage`) is per task k instead (`TaskTargets`: the run's
tasks, the teacher i(k) of each and its score G_T,k there): g_k = clip(1 − G_S,k / G_T,k, 0, 1) from the student's
current running score on task k (fed by `observe_task_scores`; it rises again when the student falls behind), so

    λ_k(t) = α · ρ_i(k) · g_k(t)        (`task_lambdas`; λ_i = α · ρ_i is then the most a task of teacher i gets)

g_k is saved under the checkpoint entry's "reengage" key ({task: teacher, teacher_score, factor}), restored on resume
(missing in older checkpoints: the start value, 1) and copied by a PBT exploit (`load_task_factors`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from sf_kickstart.kickstart.schedules import ADAPTIVE, REENGAGE, KickstartSchedule
from sf_kickstart.kickstart.untaught import STATE_KEY as UNTAUGHT_KEY, UntaughtExploration, untaught_tasks

log = logging.getLogger("rl")  # Sample Factory's logger

ALPHA_SCALE_KEY = "kickstart_lambda"
RHO_KEY = "kickstart_rho"
#: what PBT mutates (its cfg keys): α's scale and {teacher name: ρ_i}
HYPERPARAMETERS = (ALPHA_SCALE_KEY, RHO_KEY)
#: the Sample Factory checkpoint's entry holding `state_dict()`
CHECKPOINT_KEY = "kickstart"


@dataclass(frozen=True)
class TaskTargets:
    """The run's tasks as λ per task needs them: their names (index = task id), the teacher of each (index into the
    run's teachers, -1: none) and, for re-engaging λ, that teacher's score G_T,k there (None: a task without one)."""

    tasks: Tuple[str, ...] = ()
    teacher: Tuple[int, ...] = ()
    scores: Optional[Tuple[Optional[float], ...]] = None

    def supervised(self):
        """(task id, name, teacher index) of every task that has a teacher."""
        return [(k, name, i) for k, (name, i) in enumerate(zip(self.tasks, self.teacher)) if i >= 0]

    @staticmethod
    def from_state(entry: Optional[Mapping], teacher_names: Sequence[str]) -> Optional["TaskTargets"]:
        """The targets a checkpoint's "reengage" entry records (outside a run), None without one."""
        if not entry:
            return None
        names = list(teacher_names)
        return TaskTargets(
            tuple(entry),
            tuple(names.index(v["teacher"]) for v in entry.values()),
            tuple(float(v["teacher_score"]) for v in entry.values()),
        )


class KickstartWeights:
    def __init__(
        self,
        schedule: KickstartSchedule,
        teacher_names: Sequence[str],
        rho: Sequence[float],
        teacher_scores: Optional[Sequence[float]] = None,
        tasks: Optional[TaskTargets] = None,
        untaught_entropy: float = 0.0,
    ):
        self.schedule = schedule
        self.teacher_names = list(teacher_names)
        self.alpha_scale = float(schedule.lambda0)
        self.rho = np.clip(np.asarray(rho, dtype=np.float64).reshape(-1), 0.0, None)
        if len(self.rho) != len(self.teacher_names):
            raise ValueError(f"{len(self.rho)} rho values for {len(self.teacher_names)} teachers")
        # adaptive λ: G_T,i per teacher and the running factor f_i (all ones otherwise)
        self.teacher_scores = None if teacher_scores is None else np.asarray(teacher_scores, dtype=np.float64)
        if self.adaptive and (self.teacher_scores is None or self.teacher_scores.shape != self.rho.shape):
            raise ValueError("--kickstart_schedule=adaptive needs one teacher score G_T,i per teacher")
        # adaptive: the rule at the student's start, a random agent (score 0): 1, or 0 for a teacher with G_T ≤ 0
        start = [adaptive_factor(0.0, g) for g in self.teacher_scores] if self.adaptive else np.ones_like(self.rho)
        self.factor = np.asarray(start, dtype=np.float64)
        # λ per task: each task's teacher, and (re-engaging λ) G_T,k and the factor g_k (all ones otherwise)
        self.tasks = tasks if tasks is not None else TaskTargets()
        self.task_factor = np.ones(len(self.tasks.tasks), dtype=np.float64)
        if self.reengage:
            scores = self.tasks.scores
            supervised = [k for k, _, _ in self.tasks.supervised()]
            if scores is None or len(scores) != len(self.tasks.tasks) or any(scores[k] is None for k in supervised):
                raise ValueError("--kickstart_schedule=reengage needs the score G_T,k of each supervised task")
            for k in supervised:  # as for adaptive: the rule at a random agent's score, 0
                self.task_factor[k] = adaptive_factor(0.0, float(scores[k]))
        # --kickstart_untaught_entropy (`kickstart.untaught`): exploration on the tasks no teacher can teach
        self.untaught: Optional[UntaughtExploration] = None
        if untaught_entropy > 0:
            if not self.reengage:
                raise ValueError("--kickstart_untaught_entropy needs --kickstart_schedule=reengage")
            ids = untaught_tasks(self.tasks.teacher, self.tasks.scores)
            self.untaught = UntaughtExploration(untaught_entropy, self.tasks.tasks, ids)

    @property
    def adaptive(self) -> bool:
        return self.schedule.kind == ADAPTIVE

    @property
    def reengage(self) -> bool:
        """Re-engaging λ: each sample is weighted by its task's λ_k (`task_lambdas`), not its teacher's λ_i."""
        return self.schedule.kind == REENGAGE

    @staticmethod
    def from_state_dict(state: Mapping) -> "KickstartWeights":
        """The weights a checkpoint entry holds, with its own schedule (outside a run: no flags to take it from) and
        the teachers' scores it recorded (adaptive, reengage)."""
        rho = state["rho"]
        names = list(rho)
        saved_scores = state.get("adaptive_teacher_scores")
        weights = KickstartWeights(
            KickstartSchedule.from_state_dict(state["schedule"]),
            names,
            list(rho.values()),
            [saved_scores[name] for name in names] if saved_scores else None,
            TaskTargets.from_state(state.get("reengage"), names),
        )
        weights.load_state_dict(state)
        return weights

    # ------------------------------------------------------------------------------------------------------- λ
    def alpha(self, frames: float) -> float:
        return self.schedule.alpha(frames, scale=self.alpha_scale)

    def lambdas(self, frames: float) -> np.ndarray:
        """λ_i per teacher, in teacher order."""
        return self.alpha(frames) * self.rho * self.factor

    def task_lambdas(self, frames: float) -> np.ndarray:
        """λ per task, in task order: its teacher's λ_i (0: no teacher) times g_k (re-engaging λ; 1 otherwise)."""
        teacher = np.asarray(self.tasks.teacher, dtype=np.int64)
        of_teacher = self.lambdas(frames)[np.clip(teacher, 0, None)] if len(self.teacher_names) else 0.0
        return np.where(teacher >= 0, of_teacher * self.task_factor, 0.0)

    def observe_task_scores(self, scores: Mapping[str, float]) -> None:
        """Re-engaging λ: the student's current running score G_S,k per task name (tasks without a score yet are
        absent) sets g_k = clip(1 − G_S,k / G_T,k, 0, 1): down as the student gains, up again as it falls behind.
        No-op for other schedules."""
        if not self.reengage:
            return
        if self.untaught is not None:
            self.untaught.observe_task_scores(scores)
        for k, name, _ in self.tasks.supervised():
            g_s = scores.get(name)
            if g_s is not None and np.isfinite(g_s):
                self.task_factor[k] = adaptive_factor(float(g_s), float(self.tasks.scores[k]))

    def observe_student_scores(self, scores: Mapping[str, float]) -> None:
        """Adaptive λ: the student's running score G_S,i per teacher name (teachers without a score yet are absent)
        lowers f_i to clip(1 − G_S,i / G_T,i, 0, 1) if that is lower (f_i never rises). No-op for other schedules."""
        if not self.adaptive:
            return
        for name, g_s in scores.items():
            if name in self.teacher_names and g_s is not None and np.isfinite(g_s):
                i = self.teacher_names.index(name)
                self.factor[i] = min(self.factor[i], adaptive_factor(float(g_s), float(self.teacher_scores[i])))

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
        state = dict(
            schedule=self.schedule.state_dict(),
            alpha_scale=self.alpha_scale,
            alpha=self.alpha(frames),
            rho=self.hyperparameters()[RHO_KEY],
            env_steps=int(frames),
            adaptive=dict(zip(self.teacher_names, map(float, self.factor))),
        )
        if self.adaptive:  # the targets f_i was computed against (`from_state_dict`, outside a run)
            state["adaptive_teacher_scores"] = dict(zip(self.teacher_names, map(float, self.teacher_scores)))
        if self.reengage:
            state["reengage"] = {
                name: dict(
                    teacher=self.teacher_names[i],
                    teacher_score=float(self.tasks.scores[k]),
                    factor=float(self.task_factor[k]),
                )
                for k, name, i in self.tasks.supervised()
            }
        if self.untaught is not None:
            state[UNTAUGHT_KEY] = self.untaught.state_dict()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Restore α scale, ρ and the factors. The schedule and the teachers' scores come from the run's flags; a
        different saved schedule is logged."""
        self.set_hyperparameters(state["alpha_scale"], state["rho"])
        for name, value in (state.get("adaptive") or {}).items():
            if name in self.teacher_names:
                self.factor[self.teacher_names.index(name)] = float(value)
        self.load_task_factors(state)
        if self.untaught is not None:
            self.untaught.load_state_dict(state.get(UNTAUGHT_KEY))
        saved = state.get("schedule")
        if saved is not None and dict(saved) != self.schedule.state_dict():
            log.warning(f"Kickstart schedule changed since the checkpoint: {saved} -> {self.schedule.state_dict()}")
        log.info(
            f"Restored kickstart weights: alpha_scale={self.alpha_scale}, rho={self.hyperparameters()[RHO_KEY]}, "
            f"adaptive factor={list(map(float, self.factor))}"
            + (f", reengage factor={self.task_factors()}" if self.reengage else "")
        )

    def load_task_factors(self, state: Mapping) -> None:
        """Re-engaging λ's g_k from a checkpoint entry: on resume, and on a PBT exploit (the source member's, with its
        weights; the next student scores then update them). Tasks it does not name keep theirs (older checkpoints)."""
        if not self.reengage:
            return
        for k, name, _ in self.tasks.supervised():
            saved = (state.get("reengage") or {}).get(name)
            if saved is not None:
                self.task_factor[k] = float(saved["factor"])

    def task_factors(self) -> Dict[str, float]:
        """{task: g_k} of the supervised tasks."""
        return {name: float(self.task_factor[k]) for k, name, _ in self.tasks.supervised()}


def adaptive_factor(student_score: float, teacher_score: float) -> float:
    """clip(1 − G_S / G_T, 0, 1); 0 for G_T ≤ 0 (a teacher no better than a random agent, on a suite's scale)."""
    if teacher_score <= 0:
        return 0.0
    return float(np.clip(1.0 - student_score / teacher_score, 0.0, 1.0))
