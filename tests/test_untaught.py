"""Exploration on the tasks no teacher can teach (`--kickstart_untaught_entropy`, `kickstart.untaught`), by hand:
which tasks are untaught, the fading coefficient e_k = c·(1 − clip(G_S,k/100, 0, 1)), its checkpoint state, the bad
inputs (exit 2), and a real KickstartLearner (in-process) adding −e_k·H(π_S) on those tasks' steps to its exploration
loss. End to end: tests/test_e2e_reengage.py's per-task run."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from sf_kickstart.kickstart.schedules import KickstartSchedule, ScheduleError
from sf_kickstart.kickstart.untaught import UntaughtExploration, untaught_tasks
from sf_kickstart.kickstart.weights import KickstartWeights
from sf_kickstart.sf import setup
from tests.test_reengage import MAP_SCORES, ROLLOUT, TASKS, _batch, _run_cfg


def test_untaught_tasks_have_no_teacher_or_one_no_better_than_random():
    assert untaught_tasks(TASKS.teacher, TASKS.scores) == [3]  # w: no teacher
    assert untaught_tasks((0, 0, 1, -1), (50.0, 0.0, -3.0, None)) == [1, 2, 3]  # G_T,k <= 0: no better than random
    assert untaught_tasks((0, 1), None) == []  # without scores: only tasks without a teacher


def test_the_coefficient_fades_as_the_student_solves_the_task_and_returns_when_it_forgets():
    u = UntaughtExploration(0.2, ["x", "y", "z"], [1, 2])
    assert u.coefficients().tolist() == pytest.approx([0.0, 0.2, 0.2])  # no score yet: a random agent's 0
    u.observe_task_scores({"y": 25.0, "z": 130.0, "x": 10.0})
    assert u.coefficients().tolist() == pytest.approx([0.0, 0.15, 0.0])  # 0.2·(1 − 25/100); solved (capped): 0
    u.observe_task_scores({"z": -4.0, "y": float("nan")})  # forgotten (below random); a NaN score is ignored
    assert u.summaries() == pytest.approx({"y": 0.15, "z": 0.2})
    restored = UntaughtExploration(0.2, ["x", "y", "z"], [1, 2])
    restored.load_state_dict(u.state_dict())
    assert restored.state_dict() == u.state_dict() == {"y": 25.0, "z": -4.0}
    with pytest.raises(ValueError):
        UntaughtExploration(0.0, ["x"], [0])


def test_the_weights_keep_it_in_their_checkpoint_state_and_need_reengage():
    w = KickstartWeights(KickstartSchedule("reengage", 2.0), ["a", "b"], [1.0, 0.5], tasks=TASKS, untaught_entropy=0.1)
    w.observe_task_scores({"w": 60.0, "x": 10.0})
    state = w.state_dict(0)
    assert state["untaught"] == {"w": 60.0}
    fresh = KickstartWeights(KickstartSchedule("reengage", 2.0), ["a", "b"], [1.0, 0.5], tasks=TASKS,
                             untaught_entropy=0.1)
    fresh.load_state_dict(state)
    assert fresh.untaught.coefficients().tolist() == pytest.approx([0, 0, 0, 0.1 * 0.4])
    assert KickstartWeights(KickstartSchedule("reengage", 2.0), ["a", "b"], [1.0, 0.5], tasks=TASKS).untaught is None
    with pytest.raises(ValueError, match="needs --kickstart_schedule=reengage"):
        KickstartWeights(KickstartSchedule("constant", 1.0), ["a", "b"], [1.0, 0.5], tasks=TASKS, untaught_entropy=0.1)


@pytest.mark.parametrize("flags, message", [
    (["--kickstart_untaught_entropy=-0.1", "--kickstart_schedule=reengage"], "finite number >= 0"),
    (["--kickstart_untaught_entropy=nan", "--kickstart_schedule=reengage"], "finite number >= 0"),
    (["--kickstart_untaught_entropy=0.1", "--kickstart_schedule=constant"], "needs --kickstart_schedule=reengage"),
])
def test_bad_values_are_one_clear_error_exit_2(tmp_path, capsys, flags, message):
    from sf_kickstart.train import main

    teacher = os.path.join(str(tmp_path), "no_worker_starts")  # refused before any teacher is read
    rc = main(["--env=minigrid_suite", "--experiment=bad", f"--train_dir={tmp_path}", f"--teacher={teacher}",
               "--device=cpu", *flags])
    assert rc == 2
    assert message in capsys.readouterr().err
    with pytest.raises(ScheduleError, match="needs a teacher"):
        setup.check_untaught_entropy(type("Cfg", (), dict(kickstart_untaught_entropy=0.1, kickstart_schedule="reengage",
                                                          teacher=None, teachers=None))())


def test_a_real_learner_adds_the_untaught_tasks_entropy_term_to_its_exploration_loss(tmp_path):
    """One teacher on three tasks (G_T,k 50, 80, 40) and on KeyCorridorS3R1 at a random agent's level (−1): that one
    and the five tasks outside the map are untaught. c = 0.5, the student's score on KeyCorridorS3R1 40: e = 0.3."""
    from sample_factory.algo.utils.model_sharing import ParameterServer

    from sf_kickstart import tags
    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf.learner import KickstartLearner

    cfg, suite = _run_cfg(tmp_path, {**MAP_SCORES, "KeyCorridorS3R1": -1.0}, "--kickstart_untaught_entropy=0.5")
    env_info = make_env_info(cfg)
    layout = setup.build_layout(cfg, suite, env_info)
    versions = torch.zeros([1], dtype=torch.int32)
    learner = KickstartLearner(cfg, env_info, versions, 0, ParameterServer(0, versions, False), layout=layout)
    learner.init()
    learner.weights.observe_task_scores({"KeyCorridorS3R1": 40.0, "DoorKey-5x5": 90.0})
    learner.last_summary_time = 0  # summaries at this step
    stats = learner.train(_batch(layout, env_info, [0, 1, 2, 3], [0, 0, 0, 0], ROLLOUT))
    msg = stats[tags.KS_STATS_MSG]
    untaught = [t for t in learner.task_names if t not in MAP_SCORES]
    assert msg["task_exploration"] == pytest.approx({t: 0.3 if t == "KeyCorridorS3R1" else 0.5 for t in untaught})

    out_dir = os.path.join(str(tmp_path), "unit", "kickstart_debug", "p0")
    dump = torch.load(os.path.join(out_dir, sorted(os.listdir(out_dir))[-1]), weights_only=False)
    logp = torch.log_softmax(dump["student_logits"], -1).view(4, ROLLOUT, -1)  # [trajectory (= task), step, action]
    entropy = -(logp.exp() * logp).sum(-1)
    expected = -0.3 * float(entropy[3].sum()) / (4 * ROLLOUT)  # trajectory 3 only, averaged over all 32 valid steps
    assert msg["untaught_entropy_loss"] == pytest.approx(expected, rel=1e-4)
    assert expected < 0 and math.isfinite(expected)
    assert learner._get_checkpoint_dict()["kickstart"]["untaught"]["KeyCorridorS3R1"] == 40.0
    assert np.all(learner.weights.task_lambdas(0)[3:] == 0)  # untaught tasks have no kickstart term
