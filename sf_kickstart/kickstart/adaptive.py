"""Adaptive λ (`--kickstart_schedule=adaptive`): each teacher supervises until the student matches it.

    λ_i(t) = α · ρ_i · f_i(t)      f_i(t) = min over s ≤ t of clip(1 − G_S,i(s) / G_T,i, 0, 1)

  * G_T,i: teacher i's score on its tasks, on the suite-score scale (per task min(100, normalised score) for a suite,
    the mean return otherwise), the mean over its tasks. On a suite's scale 0 is a random agent: a teacher with
    G_T,i ≤ 0 is matched before training starts, so f_i = 0 from the start (with a warning); for a plain env the
    ratio needs G_T > 0 (else an error). From the `--teachers` map's `score:` entries when given,
    else from the teacher's evaluation cache (`<teacher dir>/evaluation/scores_greedy_p<policy>.json`, written by
    `python -m sf_kickstart.evaluate`). Neither: a bad-input error before any worker starts.
  * G_S,i(t): the student's running score on the same tasks, on the same scale: the suites' per-task running scores
    (`suites.scoring.published_task_scores`, the window of `--stats_avg` episodes), averaged over teacher i's tasks
    once every one of them has finished an episode (before that the short, easy tasks report first and would make
    the student look better than it is: with the running minimum that would lower λ_i for good); for an env without
    per-task scores (one teacher) SF's running `true_objective`.
  * f_i lives in `weights.KickstartWeights` (checkpointed, restored on resume); `sf.observers.AdaptiveLambda` sends
    G_S,i from the runner to the learner at each of SF's summaries; `sf.setup` resolves G_T (the evaluation cache).

This module is the rule itself and imports nothing of Sample Factory.
"""

from __future__ import annotations

import logging
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from sf_kickstart.kickstart.schedules import ADAPTIVE, ScheduleError

log = logging.getLogger("rl")  # Sample Factory's logger: the same console and sf_log.txt

EVAL_POLICY = "greedy"  # the evaluation cache adaptive λ reads (sf_kickstart.evaluate's default policy)


def mean_over(scores: Mapping[str, float], tasks: Sequence[str]) -> Optional[float]:
    """Mean of the scores of `tasks` that have one (None: none has)."""
    values = [float(scores[t]) for t in tasks if t in scores]
    return float(np.mean(values)) if values else None


def missing_score_error(schedule: str, spec, tasks: Sequence[str] = ()) -> ScheduleError:
    """The bad-input error for a teacher (teachers.TeacherSpec) whose score G_T is missing: on its tasks, or on the
    given `tasks`."""
    where = f"on task(s) {list(tasks)}" if tasks else "on its tasks"
    example = tasks[0] if tasks else "Task"
    return ScheduleError(
        f"--kickstart_schedule={schedule} needs teacher {spec.name!r}'s score {where}: give it in the --teachers "
        f"map (`{example}: {{path: dir, score: S}}`) or evaluate the teacher first (python -m sf_kickstart.evaluate "
        f"{spec.path}, which caches evaluation/scores_{EVAL_POLICY}_p{spec.policy}.json)"
    )


def checked_score(given: float, schedule: str, spec, where: str, source: str, single_task_fallback: bool) -> float:
    """A teacher's score G_T as the ratio clip(1 − G_S / G_T, 0, 1) can use it: finite, and > 0 for an env without
    per-task scores (`single_task_fallback`), else ScheduleError; ≤ 0 on a suite's scale (0 is a random agent) is
    kept, with a warning: that teacher's λ there is 0 throughout. `where`: "on its tasks [...]" / "on task 'x'"."""
    if not np.isfinite(given) or (given <= 0 and single_task_fallback):
        raise ScheduleError(
            f"--kickstart_schedule={schedule}: teacher {spec.name!r}'s score {where} from {source} is {given}; "
            f"{schedule} λ compares the student with it as a ratio, so it must be > 0"
        )
    if given <= 0:  # suite scale: 0 is a random agent, so a random student already matches this teacher
        log.warning(
            f"{schedule} λ: teacher {spec.name!r}'s score {where} from {source} is {given:.3g} ≤ 0, no better than a "
            f"random agent: its λ there is 0 from the start (it never supervises there)"
        )
    return float(given)


def teacher_score(spec, cached: Optional[Mapping[str, float]], single_task_fallback: bool) -> float:
    """G_T for one teacher (teachers.TeacherSpec): the map's scores, else its evaluation cache `cached` ({task: score},
    None when it has none), over its tasks. `single_task_fallback`: the env has no per-task scores, so a cache with one
    task is the teacher's score."""
    given = mean_over(spec.task_scores, spec.tasks)
    source = "the --teachers map's score entries"
    if given is None:
        source = f"the evaluation cache of {spec.path}"
        if cached:
            given = mean_over(cached, spec.tasks)
            if given is None and single_task_fallback and len(cached) == 1:
                given = float(next(iter(cached.values())))
    if given is None:
        raise missing_score_error(ADAPTIVE, spec)
    return checked_score(given, ADAPTIVE, spec, f"on its tasks {list(spec.tasks)}", source, single_task_fallback)


def student_scores(task_scores: Mapping[str, float], specs: Sequence) -> Dict[str, float]:
    """G_S,i per teacher name from the student's per-task running scores; a teacher is absent until every one of its
    tasks has a score."""
    return {spec.name: mean_over(task_scores, spec.tasks) for spec in specs if all(t in task_scores for t in spec.tasks)}
