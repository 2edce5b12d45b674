"""What kickstarting adds to Sample Factory's runner besides the progress line (`sf.progress`): the learner's kickstart
stats, and the student-score path of adaptive λ.

  * The kickstart stats message (`tags.KS_STATS_MSG`, sent by `sf.learner.KickstartLearner` with its training stats):
    the kickstart summaries by name relative to `kickstart/` ("loss", "lambda_<teacher>", ...), per-task λ under
    `TASK_LAMBDA` as {task: λ}. `kickstart_tags` turns it into tensorboard tags: the one place the `kickstart/` prefix
    is added (`tags.kickstart`, `tags.task_lambda`); `write_kickstart_stats` writes them, the progress line reads them.
  * `AdaptiveLambda`: at each of SF's summaries the student's running score per teacher goes from the runner to that
    policy's learner worker (`sf.runner.KickstartLearnerWorker.on_student_scores`), which lowers f_i in the learner's
    `kickstart.weights.KickstartWeights` (`kickstart.adaptive` is the rule).

May import: Sample Factory's runner API, the ground floor, `kickstart`, `suites`.
"""

from __future__ import annotations

from typing import Dict, Mapping, Sequence

import numpy as np

from sample_factory.algo.runners.runner import AlgoObserver

from sf_kickstart import tags
from sf_kickstart.kickstart.adaptive import student_scores
from sf_kickstart.suites.scoring import published_task_scores

#: the kickstart stats message's entry {task: λ of the teacher that supervises the task (0: none)}
TASK_LAMBDA = "task_lambda"


def kickstart_tags(stats: Mapping) -> Dict[str, float]:
    """The learner's kickstart stats message as {tensorboard tag: value}."""
    out = {tags.kickstart(name): value for name, value in stats.items() if name != TASK_LAMBDA}
    out.update({tags.task_lambda(task): value for task, value in stats.get(TASK_LAMBDA, {}).items()})
    return out


def write_kickstart_stats(runner, msg, policy_id: int) -> None:
    """Policy message handler (`tags.KS_STATS_MSG`): the kickstart summaries into the policy's tensorboard."""
    env_steps = runner.env_steps.get(policy_id, 0)
    for tag, value in kickstart_tags(msg[tags.KS_STATS_MSG]).items():
        runner.writers[policy_id].add_scalar(tag, value, env_steps)


def student_scores_signal(policy_id: int) -> str:
    return f"kickstart_student_scores_p{policy_id}"


class AdaptiveLambda(AlgoObserver):
    """Runner side of adaptive λ: at each summary, G_S,i per teacher goes to the policy's learner worker."""

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
