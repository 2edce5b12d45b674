"""Observers of the Sample Factory runner that kickstarting adds (progress line: `progress`).

`AdaptiveLambda`: the student-score path of adaptive λ (`kickstart.adaptive`): at each of SF's summaries the
student's running score per teacher goes from the runner to that policy's learner worker.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from sample_factory.algo.runners.runner import AlgoObserver

from sf_kickstart.kickstart.adaptive import student_scores
from sf_kickstart.suites.scoring import published_task_scores


def student_scores_signal(policy_id: int) -> str:
    return f"kickstart_student_scores_p{policy_id}"


class AdaptiveLambda(AlgoObserver):
    """Runner side of adaptive λ: at each summary, G_S,i per teacher goes to the policy's learner (its
    `runner.KickstartLearnerWorker.on_student_scores` slot), which lowers f_i in its KickstartWeights."""

    def __init__(self, cfg, specs: Sequence):
        self.cfg = cfg
        self.specs = list(specs)

    def on_connect_components(self, runner) -> None:
        for policy_id, learner_worker in runner.learners.items():
            runner.connect(student_scores_signal(policy_id), learner_worker.on_student_scores)

    def scores(self, runner, policy_id: int) -> Dict[str, float]:
        per_task = published_task_scores(runner, policy_id)
        if per_task:
            return student_scores(per_task, self.specs)
        objective = runner.policy_avg_stats.get("true_objective")
        if len(self.specs) == 1 and objective is not None and len(objective[policy_id]) > 0:
            return {self.specs[0].name: float(np.mean(objective[policy_id]))}
        return {}

    def extra_summaries(self, runner, policy_id, writer, env_steps) -> None:
        scores = self.scores(runner, policy_id)
        if scores:
            runner.emit(student_scores_signal(policy_id), scores)
