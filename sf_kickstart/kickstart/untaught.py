"""Exploration on the tasks no teacher can teach (`--kickstart_untaught_entropy=c`, re-engaging λ only).

A task k is *untaught* when it has no teacher in the `--teachers` map, or when its teacher is no better than a random
agent there (G_T,k ≤ 0 on the suite's scale: re-engaging λ gives it g_k = 0 throughout). Its samples carry no
kickstart term, yet the student's policy there is not left alone: the network is shared, and imitating near-
deterministic teachers on the other tasks makes its policy on the untaught ones near-deterministic too. Issue 20's
main job, seed 1: on KeyCorridorS3R1 (λ = 0 from the first step) the kickstarted student's entropy fell from 1.95
(uniform over 7 actions) to 0.94 in its first 50K frames, while the same student from scratch was still at 1.84; the
student from scratch then learned the task (73 at 1M) and the kickstarted one never did.

Measured over 3 seeds (`benchmarks/main_job_early.py`), this term restores that entropy but does not make the task
learned (KeyCorridorS3R1 at 1M: 1.6 with c = 0.3, against 49.6 from scratch); it stays off by default.

The term is Sample Factory's own exploration term, per task: each valid step of an untaught task k adds

    − e_k · H(π_S(·|s))        e_k = c · (1 − clip(G_S,k / 100, 0, 1))

averaged over all valid steps of the minibatch, as SF averages its `exploration_loss_coeff` term, to the exploration
loss. G_S,k is the student's current running score on the task (the one re-engaging λ reads; 0 until its first
episodes there), so the bonus fades as the student solves the task (the suite scale's 100) and comes back if it
forgets it. `kickstart/task_exploration/<task>` is e_k; `kickstart/untaught_entropy_loss` the term. The scores it last
saw are saved in the checkpoint's "kickstart" entry under "untaught" and restored on resume.

This module imports nothing of Sample Factory.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import numpy as np

#: the suite scale's "solved": a task's score is min(100, normalised score)
SOLVED = 100.0
STATE_KEY = "untaught"


def untaught_tasks(teacher: Sequence[int], teacher_scores: Optional[Sequence[Optional[float]]]) -> list:
    """Task ids without a teacher (-1) or whose teacher's score there is ≤ 0 (no better than a random agent)."""
    scores = list(teacher_scores) if teacher_scores is not None else [None] * len(teacher)
    return [k for k, (i, g) in enumerate(zip(teacher, scores)) if i < 0 or (g is not None and g <= 0)]


class UntaughtExploration:
    def __init__(self, coeff: float, task_names: Sequence[str], untaught: Sequence[int]):
        if not np.isfinite(coeff) or coeff <= 0:
            raise ValueError(f"the untaught-task entropy coefficient must be finite and > 0, got {coeff}")
        self.coeff = float(coeff)
        self.task_names = list(task_names)
        self.untaught = sorted(int(k) for k in untaught)
        self.scores = np.zeros(len(self.task_names), dtype=np.float64)  # G_S,k; a random agent's 0 until seen

    def observe_task_scores(self, scores: Mapping[str, float]) -> None:
        for k in self.untaught:
            value = scores.get(self.task_names[k])
            if value is not None and np.isfinite(value):
                self.scores[k] = float(value)

    def coefficients(self) -> np.ndarray:
        """e_k per task, in task order (0 on taught tasks)."""
        out = np.zeros(len(self.task_names), dtype=np.float64)
        for k in self.untaught:
            out[k] = self.coeff * (1.0 - float(np.clip(self.scores[k] / SOLVED, 0.0, 1.0)))
        return out

    def summaries(self) -> Dict[str, float]:
        """{task: e_k} of the untaught tasks."""
        e = self.coefficients()
        return {self.task_names[k]: float(e[k]) for k in self.untaught}

    def state_dict(self) -> Dict[str, float]:
        return {self.task_names[k]: float(self.scores[k]) for k in self.untaught}

    def load_state_dict(self, state: Optional[Mapping[str, float]]) -> None:
        self.observe_task_scores(state or {})
