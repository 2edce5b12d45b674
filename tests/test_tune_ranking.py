"""Ray Tune PBT ranks a member only on a score its interval wrote: a member whose interval wrote no metric (Sample
Factory writes reward/reward only once --stats_avg episodes ended in one run) neither exploits nor is copied.
Fast lane: Ray's real PopulationBasedTraining, fed results in-process (no Ray cluster)."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pandas as pd
import pytest

from sf_kickstart.populations.tune.trial import interval_score, note_unranked, ranking

TAG = "reward/reward"


def _write(exp_dir, points):
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(exp_dir / ".summary" / "0"))
    for tag, value, step, wall in points:
        writer.add_scalar(tag, value, step, walltime=wall)
    writer.close()


def test_the_score_is_the_value_written_by_this_interval_only(tmp_path):
    now = time.time()
    _write(tmp_path, [(TAG, 5.0, 1000, now - 100), ("len/len", 30.0, 1000, now - 100)])  # an earlier interval
    assert interval_score(str(tmp_path), TAG, since=now - 200) == 5.0
    assert interval_score(str(tmp_path), TAG, since=now) is None  # never an earlier interval's (or pre-exploit) value
    _write(tmp_path, [(TAG, 7.0, 1500, now + 1), (TAG, 8.0, 2000, now + 2)])
    assert interval_score(str(tmp_path), TAG, since=now) == 8.0
    assert interval_score(str(tmp_path), "suite/score", since=now) is None
    _write(tmp_path, [(TAG, float("nan"), 2500, now + 3)])
    assert interval_score(str(tmp_path), TAG, since=now + 3) is None  # a non-finite value is no score either


def test_a_missing_score_is_reported_as_unranked(tmp_path, capsys):
    assert ranking(3.5) == dict(score=3.5, metric_missing=False)
    missing = ranking(None)
    assert math.isnan(missing["score"]) and missing["metric_missing"] is True
    note_unranked(str(tmp_path), 1, 2000, TAG)
    log = (tmp_path / "tune_train.log").read_text()
    assert "member_01: the interval to 2000 frames wrote no reward/reward: not ranked" in log and "--stats_avg" in log
    assert "not ranked" in capsys.readouterr().err


class _Controller:
    """What PopulationBasedTraining asks of Tune's controller here: the trials, and saving a top member."""

    search_alg = None

    def __init__(self, trials):
        self.trials = trials

    def get_trials(self):
        return self.trials

    def get_live_trials(self):
        return self.trials

    def _schedule_trial_save(self, trial, result=None):
        return f"checkpoint of {trial.trial_id}"  # a top member's checkpoint, which an exploit copies


def _exploits(scores, synch):
    """Feed two intervals' results (score None: the interval wrote no metric) to the project's PBT scheduler; the
    (member, source) pairs of the exploits it decides."""
    from ray.tune.experiment import Trial

    from sf_kickstart.populations.tune.cli import make_scheduler

    cfg = SimpleNamespace(pbt_start_mutation=0, pbt_replace_fraction=0.5)
    plan = SimpleNamespace(interval=1000)
    space = SimpleNamespace(explore_config=lambda config: config)
    scheduler = make_scheduler(cfg, SimpleNamespace(tune_synch=synch), space, plan)
    trials = [Trial("__fake", config={"hp": {}}, stub=True, trial_id=f"t_{i:05d}") for i in range(len(scores))]
    controller = _Controller(trials)
    for t in trials:
        t.set_status(Trial.RUNNING)
        scheduler.on_trial_add(controller, t)
    exploits = []
    scheduler._exploit = lambda _ctl, trial, source: exploits.append((trials.index(trial), trials.index(source)))
    for frames in (1000, 2000):  # two intervals: asynchronous PBT saves a top member when its own result ranks it
        for t, score in zip(trials, scores):
            result = score if isinstance(score, dict) else ranking(score)
            scheduler.on_trial_result(controller, t, dict(result, env_steps=frames))
    return exploits


@pytest.mark.parametrize("synch", [False, True], ids=["async", "synch"])
def test_a_member_without_a_score_neither_exploits_nor_is_copied(synch):
    assert _exploits([1.0, None], synch) == []  # the other has no score: nobody to rank against
    assert _exploits([None, None], synch) == []  # the two-node CartPole population: no exploit at all
    exploits = _exploits([1.0, None, 0.5, None], synch)
    assert exploits and set(exploits) == {(2, 0)}  # the two members with a score rank among themselves; 1 and 3 are left alone


def test_minus_infinity_would_have_exploited():
    """Why NaN: with the score -inf (what the trial reported before) the unranked member exploits the other."""
    assert set(_exploits([1.0, dict(score=float("-inf"), metric_missing=True)], synch=False)) == {(1, 0)}


def test_the_driver_counts_and_explains_unranked_intervals(capsys):
    from sf_kickstart.populations.tune.cli import report_unranked, unranked_intervals

    def result(member, scores):
        return SimpleNamespace(metrics_dataframe=pd.DataFrame(dict(score=scores, member=[member] * len(scores))))

    results = [result(0, [1.0, float("nan")]), result(1, [float("nan"), float("nan")]), result(2, [2.0]),
               SimpleNamespace(metrics_dataframe=None)]
    unranked = unranked_intervals(results)
    assert unranked == {"member_00": 1, "member_01": 2}
    report_unranked(unranked, TAG)
    err = capsys.readouterr().err
    assert "too short to rank on reward/reward" in err and "member_01: 2" in err and "--stats_avg" in err
    report_unranked({}, TAG)
    assert capsys.readouterr().err == ""
