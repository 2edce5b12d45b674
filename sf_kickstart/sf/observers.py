"""What kickstarting adds to Sample Factory's runner besides the progress line (`sf.progress`): the learner's kickstart
stats, and the student-score path of adaptive and re-engaging λ.

  * The kickstart stats message (`tags.KS_STATS_MSG`, sent by `sf.learner.KickstartLearner` with its training stats):
    the kickstart summaries by name relative to `kickstart/` ("loss", "lambda_<teacher>", ...), per-task λ under
    `TASK_LAMBDA` as {task: λ}, re-engaging λ's factors under `TASK_FACTOR` as {task: g_k} and the teacher's entropy
    per supervised task under `TASK_TEACHER_ENTROPY` as {task: H(π_T)}, the untaught tasks' entropy coefficients under
    `TASK_EXPLORATION` as {task: e_k}. `kickstart_tags` turns it into tensorboard
    tags: the one place the `kickstart/` prefix is added (`tags.kickstart`, `tags.task_lambda`, `tags.task_factor`,
    `tags.task_teacher_entropy`); `write_kickstart_stats` writes them, the progress line reads them.
  * `AdaptiveLambda`: at each of SF's summaries the student's running scores, per teacher and per task, go from the
    runner to that policy's learner worker (`sf.runner.KickstartLearnerWorker.on_student_scores`), which updates
    the learner's `kickstart.weights.KickstartWeights`: adaptive λ's f_i (`kickstart.adaptive` is the rule) or
    re-engaging λ's g_k (`kickstart.reengage`).

May import: Sample Factory's runner API, the ground floor, `kickstart`, `suites`.
"""

from __future__ import annotations

from typing import Dict, Mapping, Sequence

import numpy as np

from sample_factory.algo.runners.runner import AlgoObserver

from sf_kickstart import tags
from sf_kickstart.kickstart.adaptive import student_scores
from sf_kickstart.suites.scoring import published_task_scores

#: the kickstart stats message's entry {task: λ applied to the task's samples (0: no teacher)}
TASK_LAMBDA = "task_lambda"
#: its entry {task: re-engaging λ's factor g_k} (supervised tasks, re-engaging λ only)
TASK_FACTOR = "task_factor"
#: its entry {task: the teacher's mean H(π_T) on the task's supervised steps} (envs with task ids)
TASK_TEACHER_ENTROPY = "task_teacher_entropy"
#: its entry {task: the untaught-task entropy coefficient e_k} (--kickstart_untaught_entropy > 0, untaught tasks)
TASK_EXPLORATION = "task_exploration"
#: entry -> its tags, one per task
PER_TASK = {
    TASK_LAMBDA: tags.task_lambda, TASK_FACTOR: tags.task_factor, TASK_TEACHER_ENTROPY: tags.task_teacher_entropy,
    TASK_EXPLORATION: tags.task_exploration,
}


def kickstart_tags(stats: Mapping) -> Dict[str, float]:
    """The learner's kickstart stats message as {tensorboard tag: value}."""
    out = {tags.kickstart(name): value for name, value in stats.items() if name not in PER_TASK}
    for entry, tag in PER_TASK.items():
        out.update({tag(task): value for task, value in stats.get(entry, {}).items()})
    return out


def write_kickstart_stats(runner, msg, policy_id: int) -> None:
    """Policy message handler (`tags.KS_STATS_MSG`): the kickstart summaries into the policy's tensorboard."""
    env_steps = runner.env_steps.get(policy_id, 0)
    for tag, value in kickstart_tags(msg[tags.KS_STATS_MSG]).items():
        runner.writers[policy_id].add_scalar(tag, value, env_steps)


def student_scores_signal(policy_id: int) -> str:
    return f"kickstart_student_scores_p{policy_id}"


class AdaptiveLambda(AlgoObserver):
    """Runner side of adaptive and re-engaging λ: at each summary, the student's running scores go to the policy's
    learner worker, per teacher (adaptive: G_S,i) and per task (reengage: G_S,k)."""

    def __init__(self, cfg, specs: Sequence, tasks: Sequence[str] = ()):
        self.cfg = cfg
        self.specs = list(specs)
        self.tasks = list(tasks)

    def on_connect_components(self, runner) -> None:
        for policy_id, learner_worker in runner.learners.items():
            runner.connect(student_scores_signal(policy_id), learner_worker.on_student_scores)

    def scores(self, runner, policy_id: int) -> Dict[str, Dict[str, float]]:
        """{"teachers": {teacher: G_S,i}, "tasks": {task: G_S,k}}: from the suite's per-task running scores, or, for
        an env without them, SF's running `true_objective` as the score of its one teacher and of its one task."""
        per_task = published_task_scores(runner, policy_id)
        if per_task:
            return dict(teachers=student_scores(per_task, self.specs), tasks=per_task)
        objective = runner.policy_avg_stats.get("true_objective")
        if objective is None or len(objective[policy_id]) == 0:
            return dict(teachers={}, tasks={})
        value = float(np.mean(objective[policy_id]))
        return dict(
            teachers={self.specs[0].name: value} if len(self.specs) == 1 else {},
            tasks={self.tasks[0]: value} if len(self.tasks) == 1 else {},
        )

    def extra_summaries(self, runner, policy_id, writer, env_steps) -> None:
        scores = self.scores(runner, policy_id)
        if any(scores.values()):
            runner.emit(student_scores_signal(policy_id), scores)
