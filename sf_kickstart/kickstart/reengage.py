"""Re-engaging per-task λ (`--kickstart_schedule=reengage`): on each task, the teacher supervises as long as, and
whenever, the student is below it there.

    λ_k(t) = α · ρ_i(k) · g_k(t)      g_k(t) = clip(1 − G_S,k(t) / G_T,k, 0, 1)

  * k a task, i(k) the teacher that supervises it (the `--teachers` map; one `--teacher`: every task), α the constant
    `--kickstart_lambda` (PBT's α scale) and ρ_i the teacher's weight: α · ρ_i is "the schedule's value", the most a
    task of teacher i gets.
  * G_T,k: the teacher's score on task k alone, on the suite-score scale (min(100, normalised score); the mean
    return for an env without per-task scores): the `--teachers` map's `score:` entry for k, else the teacher's
    evaluation cache (`<teacher dir>/evaluation/scores_greedy_p<policy>.json`, written by
    `python -m sf_kickstart.evaluate`), task by task. A task with neither is a bad-input error naming it, before any
    worker starts. G_T,k ≤ 0 on a suite's scale (no better than a random agent there): g_k = 0 throughout.
  * G_S,k(t): the student's CURRENT running score on task k (`suites.scoring.published_task_scores`: the window of the
    last `--stats_avg` episodes of that task; SF's running `true_objective` for a one-task env without per-task
    scores). A task that has not finished an episode yet keeps g_k = 1 (that of a random agent, score 0).

Why this rule:
  * g_k = 0 once G_S,k ≥ G_T,k: on a task it has mastered the student is free to surpass its teacher (the paper's
    promise), and nothing pulls it back towards the teacher's level;
  * g_k > 0 again as soon as G_S,k falls below G_T,k, in proportion to the shortfall relative to the teacher's own
    margin over a random agent, reaching the full α · ρ_i at random-agent level (or below): a task the student starts
    to forget gets its teacher back, a task it has collapsed on (issue 20: Empty-Random-6x6 99 → −25) gets all of it.
    Unlike adaptive λ there is no running minimum (which switches a teacher off for good) and the factor is per task,
    not per teacher: one teacher of nine tasks stops on the mastered ones and stays on the others;
  * it is continuous in G_S,k, so no threshold to chatter around and no hysteresis needed: the running score is a
    mean over `--stats_avg` episodes already, and a noise dip of ε points costs λ = α·ρ_i·ε / G_T,k, tiny on a
    mastered task (a student at 98 against a teacher's 99: 1 % of α·ρ_i);
  * it is scale-free (a ratio), so a suite score and a plain env's return work alike, and it is adaptive λ's own
    factor (`weights.adaptive_factor`): the ablation's `ks_adaptive` and `ks_reengage` differ only in per task and
    current score against per teacher and running minimum;
  * α is constant: a base that decays to 0 (linear, exponential without a floor) would switch re-engagement off with
    it, which is how the issue's student lost its teacher for good. PBT mutates α and ρ_i as for `constant`.
A weak teacher (G_T,k just above 0) makes g_k swing with the student's noise; such a teacher also has little to teach.

The factors g_k live in `weights.KickstartWeights` (checkpointed under the "kickstart" entry's "reengage" key,
restored on resume, copied by a PBT exploit); the learner weights each sample by its task's λ_k and writes
`kickstart/task_lambda/<task>` (λ_k) and `kickstart/task_factor/<task>` (g_k); `sf.observers.AdaptiveLambda` sends
G_S,k from the runner to the learner at each of SF's summaries; `sf.setup` resolves G_T,k (`task_teacher_scores`).

This module is the rule's input side and imports nothing of Sample Factory.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

from sf_kickstart.kickstart.adaptive import checked_score, missing_score_error
from sf_kickstart.kickstart.schedules import REENGAGE


def task_teacher_scores(spec, cached: Optional[Mapping[str, float]], single_task_fallback: bool) -> Dict[str, float]:
    """G_T,k for each task of one teacher (teachers.TeacherSpec): the map's score for the task, else its evaluation
    cache's (`cached`: {task: score}, None when it has none). `single_task_fallback`: the env has no per-task scores,
    so a one-task teacher's cache with one entry is its score. ScheduleError naming every task without a score."""
    cached = dict(cached or {})
    if single_task_fallback and len(spec.tasks) == 1 and len(cached) == 1:
        cached = {spec.tasks[0]: next(iter(cached.values()))}
    missing = [task for task in spec.tasks if task not in spec.task_scores and task not in cached]
    if missing:
        raise missing_score_error(REENGAGE, spec, missing)
    scores = {}
    for task in spec.tasks:
        given = spec.task_scores.get(task)
        source = "the --teachers map's score entry" if given is not None else f"the evaluation cache of {spec.path}"
        given = cached[task] if given is None else given
        scores[task] = checked_score(float(given), REENGAGE, spec, f"on task {task!r}", source, single_task_fallback)
    return scores
