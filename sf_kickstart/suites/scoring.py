"""The one normalised-score implementation every multi-task suite uses (MiniGrid, Atari; DMLab mirrors SF's own).

A suite with a score declares a `ScoreTable` (per task: the raw score of random play and of the reference, a human
or an oracle) and how its envs report a finished episode's raw return (`info["episode_extra_stats"][stat_key]`).
`install_suite_score` then registers, on a Sample Factory runner:
  * `TaskReturns.episodic_stats_handler`: per policy, per task, a sliding window of the last `--stats_avg` returns;
  * `SuiteSummaries`: at each of SF's summaries, per task R_i (mean return) and N_i = 100·(R_i − random)/(ref − random)
    (normalisation after the mean, as IMPALA does), the suite score S = mean over the tasks seen so far of min(100, N_i),
    written as the tags of `sf_kickstart.tags` and published as the PBT objective (`publish_suite_score`).
DMLab-30 keeps SF's own scoring code and only mirrors its result through `publish_suite_score`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, List, Mapping, Optional, Sequence

import numpy as np

from sample_factory.algo.runners.runner import AlgoObserver
from sample_factory.algo.utils.misc import EPISODIC
from sample_factory.utils.utils import log

from sf_kickstart import tags
from sf_kickstart.suites.base import cfg_value


@dataclass(frozen=True)
class ScoreTable:
    """Raw scores of random play (0 %) and of the reference (100 %), per task."""

    random: Mapping[str, float]
    reference: Mapping[str, float]

    def normalized(self, task: str, mean_return: float) -> float:
        """100 · (R − random) / (reference − random). Uncapped."""
        rnd, ref = self.random[task], self.reference[task]
        return 100.0 * (mean_return - rnd) / (ref - rnd)

    def capped_mean(self, mean_returns: Mapping[str, float], cap: float = 100.0) -> float:
        """Suite score: mean over the given tasks of min(cap, normalised score of the task's mean return)."""
        if not mean_returns:
            raise ValueError("no task results to score")
        return float(np.mean([min(cap, self.normalized(t, r)) for t, r in mean_returns.items()]))


class TaskReturns:
    """Per-policy, per-task windows of recent raw returns, fed by SF's episodic-stats messages."""

    def __init__(self, tasks: Sequence[str], stat_keys: Mapping[str, str], num_policies: int, window: int):
        """tasks: the tasks scored, in task-id order; stat_keys: episode_extra_stats key -> task."""
        self.tasks = list(tasks)
        self.stat_keys = {k: t for k, t in stat_keys.items() if t in self.tasks}
        self.window = max(1, int(window))
        self.returns: List[Dict[str, Deque[float]]] = [dict() for _ in range(num_policies)]

    def add(self, policy_id: int, task: str, value) -> None:
        d = self.returns[policy_id].setdefault(task, deque(maxlen=self.window))
        if isinstance(value, np.ndarray) and value.ndim > 0:
            d.extend(float(v) for v in value.reshape(-1))
        else:
            d.append(float(value))

    def episodic_stats_handler(self, runner, msg: Dict, policy_id: int) -> None:
        extra = msg.get(EPISODIC, {}).get("episode_extra_stats", {}) or {}
        for key, value in extra.items():
            task = self.stat_keys.get(key)
            if task is not None:
                self.add(policy_id, task, value)

    def mean_returns(self, policy_id: int) -> Dict[str, float]:
        """Mean recent raw return per task that has results, in task-id order."""
        per_task = self.returns[policy_id]
        return {t: float(np.mean(per_task[t])) for t in self.tasks if len(per_task.get(t, ())) > 0}


def publish_suite_score(runner, policy_id: int, score: float, num_policies: int) -> None:
    """The suite score as `runner.policy_avg_stats[SUITE_SCORE_KEY][policy_id]` (a deque of length 1 per policy, like
    SF's `dmlab_target_objective`): `--pbt_target_objective=suite_score` and `--save_best_metric=suite_score`."""
    avg = runner.policy_avg_stats
    if tags.SUITE_SCORE_KEY not in avg or len(avg[tags.SUITE_SCORE_KEY]) < num_policies:
        avg[tags.SUITE_SCORE_KEY] = [deque(maxlen=1) for _ in range(num_policies)]
    avg[tags.SUITE_SCORE_KEY][policy_id].append(float(score))


def published_task_scores(runner, policy_id: int) -> Dict[str, float]:
    """Per task, the policy's running score on the suite-score scale, min(100, N_i), as the suite's summaries last
    wrote it (what adaptive λ compares with a teacher's score); {} before any or without a suite score."""
    for observer in runner.observers:
        if isinstance(observer, SuiteSummaries):
            return dict(observer.task_scores.get(policy_id, {}))
    return {}


class SuiteSummaries(AlgoObserver):
    """Writes the suite/* tags each time Sample Factory writes its own summaries (each --report_interval)."""

    def __init__(self, returns: TaskReturns, table: ScoreTable, seen_aliases: Sequence[str] = ()):
        self.returns = returns
        self.table = table
        self.seen_tags = (tags.TASKS_SEEN, *seen_aliases)
        self.task_scores: Dict[int, Dict[str, float]] = {}  # {policy_id: {task: min(100, N_i)}}: published_task_scores

    def write(self, runner, policy_id: int, writer, env_steps: int) -> Optional[float]:
        """Write suite/* for one policy and publish its suite score. Returns the score (None: no task seen yet)."""
        means = self.returns.mean_returns(policy_id)
        if not means:
            return None
        normalized = {task: self.table.normalized(task, r) for task, r in means.items()}
        score = self.table.capped_mean(means)
        for task, value in means.items():
            writer.add_scalar(tags.task_score(task), value, env_steps)
            writer.add_scalar(tags.task_normalized(task), normalized[task], env_steps)
        writer.add_scalar(tags.SUITE_SCORE, score, env_steps)
        writer.add_scalar(tags.SUITE_MEAN_NORMALIZED, float(np.mean(list(normalized.values()))), env_steps)
        for tag in self.seen_tags:
            writer.add_scalar(tag, len(means), env_steps)
        publish_suite_score(runner, policy_id, score, len(self.returns.returns))
        self.task_scores[policy_id] = {task: min(100.0, n) for task, n in normalized.items()}
        return score

    def extra_summaries(self, runner, policy_id, writer, env_steps: int) -> None:
        self.write(runner, policy_id, writer, env_steps)


def warn_if_batched(cfg, what: str) -> None:
    """SF's batched sampler drops info['episode_extra_stats']: no per-task returns reach the runner."""
    if cfg_value(cfg, "batched_sampling", False):
        log.warning(
            "%s: --batched_sampling=True drops info['episode_extra_stats']; per-task scores and %r stay empty",
            what,
            tags.SUITE_SCORE_KEY,
        )


def install_suite_score(
    cfg, runner, tasks: Sequence[str], stat_keys: Mapping[str, str], table: ScoreTable, seen_aliases: Sequence[str] = ()
) -> TaskReturns:
    """Register the per-task episodic-stats handler and the suite/* summaries on a Sample Factory runner."""
    warn_if_batched(cfg, cfg.env)
    returns = TaskReturns(tasks, stat_keys, num_policies=cfg.num_policies, window=cfg_value(cfg, "stats_avg", 100))
    runner.register_episodic_stats_handler(returns.episodic_stats_handler)
    runner.register_observer(SuiteSummaries(returns, table, seen_aliases))
    return returns
