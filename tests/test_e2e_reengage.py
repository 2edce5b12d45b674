"""Re-engaging per-task λ end to end (`--kickstart_schedule=reengage`): real runs on CPU, read back from their
tensorboard summaries and checkpoints.

  * a student made to forget its task gets its teacher back there: `tests.forgetting_env` pays episode returns of 10,
    whatever the student does, then 2.5 once the test, having seen λ reach 0, tells it to; against a teacher's score
    of 5, λ = 1 until the first score, 0 while the student is above its teacher, then back up to 1 − 2.5/5 = 0.5,
    through the runner's scores, the learner and its summaries;
  * per task, not per teacher, on the MiniGrid suite: one teacher on two tasks, one it is far better at than any
    early student (λ > 0 throughout) and one it is no better than random at (λ = 0 throughout); resumed with that
    task's score raised in the map, the restored factor 0 rises again once the student's score on the task arrives;
    with `--kickstart_untaught_entropy`, the random-level task and the tasks outside the map get its entropy bonus
    until the resume makes the former taught.
"""

import json
import os

import pytest

from sf_kickstart import tags
from tests.e2e_utils import FAST, describe, latest_checkpoint, make_teacher_dir, read_log, run_train, scalars
from tests.e2e_utils import start_train, wait_until

pytestmark = pytest.mark.e2e

FORGET_ENV = "tests.forgetting_env:SfKickstartForgetting-v0"
TEACHER_SCORE = 5.0  # between the env's episode returns before (10) and after (2.5) it "forgets"


def _write_map(path, scores, teacher):
    with open(path, "w") as f:
        json.dump({task: {"path": teacher, "score": s} for task, s in scores.items()}, f)  # JSON is YAML


def _tb(tag):
    """A tag as tensorboard stores it (torch's SummaryWriter replaces characters such as ':' with '_')."""
    return tag.replace(":", "_")


def _train_args(tmp_path, env, experiment, teachers, steps, *extra):
    return [
        f"--env={env}", f"--experiment={experiment}", f"--train_dir={tmp_path}", f"--teachers={teachers}",
        "--kickstart_schedule=reengage", "--kickstart_lambda=1.0", "--encoder_mlp_layers", "32",
        f"--train_for_env_steps={steps}", "--stats_avg=10", *FAST, *extra,
    ]


def _forget_teacher(tmp_path):
    from gymnasium import spaces
    import numpy as np

    teacher = make_teacher_dir(
        os.path.join(str(tmp_path), "teacher"), env=FORGET_ENV, extra=("--use_rnn=False",),
        obs_space=spaces.Dict({"obs": spaces.Box(-1, 1, (4,), np.float32)}), action_space=spaces.Discrete(2),
    )
    teachers = os.path.join(str(tmp_path), "teachers.yaml")
    _write_map(teachers, {FORGET_ENV: TEACHER_SCORE}, teacher)
    return teachers


def test_a_student_that_forgets_its_task_gets_its_teacher_back(tmp_path):
    """Driven by what the run reports, not by its frame count: it trains until stopped, so a fast machine cannot end
    it before the test has seen each phase, nor a slow one before the forgotten episodes have reached λ."""
    import signal

    from tests.forgetting_env import MARKER_ENV
    from tests.test_faults import stop

    marker = os.path.join(str(tmp_path), "forget_now")
    args = _train_args(tmp_path, FORGET_ENV, "forget", _forget_teacher(tmp_path), 10**8, "--use_rnn=False",
                       "--flush_summaries_interval=1")
    exp = os.path.join(str(tmp_path), "forget")
    lam = lambda: [v for _, v in scalars(exp, _tb(tags.task_lambda(FORGET_ENV)))]  # noqa: E731
    log_path = os.path.join(str(tmp_path), "train.log")
    proc = start_train(args, log_path, extra_env={MARKER_ENV: marker})
    try:
        wait_until(lambda: 0.0 in lam(), 240, proc, "λ = 0: the student (return 10) above its teacher (5)")
        open(marker, "w").close()  # from now on every episode returns 2.5: the student "forgot" the task
        wait_until(lambda: lam()[-1] == pytest.approx(0.5), 240, proc, "λ = 0.5 again: the teacher back, 1 − 2.5 / 5")
        proc.send_signal(signal.SIGINT)  # a graceful stop: a final checkpoint
        assert proc.wait(120) == 128 + signal.SIGINT, read_log(log_path)[-4000:]
    finally:
        stop(proc)
    values = lam()
    factor = [v for _, v in scalars(exp, _tb(tags.task_factor(FORGET_ENV)))]
    assert values == pytest.approx(factor)  # α = 1: λ_k = g_k
    zero_at = values.index(0.0)
    assert set(values[:zero_at]) <= {1.0}  # before that, no score yet: the schedule's value
    assert max(values[zero_at:]) > 0.0 and values[-1] == pytest.approx(0.5), values  # in proportion: 1 − 2.5 / 5
    assert latest_checkpoint(exp)["kickstart"]["reengage"][FORGET_ENV]["factor"] == pytest.approx(0.5)


def test_per_task_lambda_of_one_teacher_and_a_restored_zero_that_reengages(tmp_path):
    teacher = make_teacher_dir(os.path.join(str(tmp_path), "teacher"))  # MiniGrid spaces, untrained
    teachers = os.path.join(str(tmp_path), "teachers.yaml")
    below, matched = "MultiRoom-N2-S4", "Empty-Random-6x6"  # both finish episodes early (40 and 144 steps at most)
    # an oracle-level score the student is far below; a score a random agent already matches
    _write_map(teachers, {below: 100.0, matched: -1.0}, teacher)
    # one worker with 8 envs (tasks 0-7): a second worker may start seconds late on a busy machine, and a short resume
    # would then see no episode of its tasks
    args = lambda steps: _train_args(  # noqa: E731
        tmp_path, "minigrid_suite", "per_task", teachers, steps, "--num_workers=1", "--num_envs_per_worker=8",
        "--kickstart_untaught_entropy=0.05",
    )
    proc = run_train(args(6000))
    assert proc.returncode == 0, describe(proc)
    exp = os.path.join(str(tmp_path), "per_task")
    lam = {task: [v for _, v in scalars(exp, tags.task_lambda(task))] for task in (below, matched, "DoorKey-5x5")}
    assert lam[below] and all(0.0 < v <= 1.0 for v in lam[below]), lam  # 1 − G_S/100, G_S of a random student
    assert lam[matched] and set(lam[matched]) == {0.0}  # same teacher, λ 0 on this task throughout
    assert set(lam["DoorKey-5x5"]) == {0.0}  # not in the map: no teacher
    ck = latest_checkpoint(exp)
    assert set(ck["kickstart"]["reengage"]) == {below, matched} and ck["kickstart"]["reengage"][matched]["factor"] == 0
    # untaught (`kickstart.untaught`): `matched` (its teacher no better than random) and the tasks outside the map get
    # the entropy bonus e_k = 0.05·(1 − G_S,k/100) in (0, 0.05]; `below`, taught, none
    explore = lambda task: [v for _, v in scalars(exp, tags.task_exploration(task))]  # noqa: E731
    assert explore(matched) and all(0.0 < v <= 0.05 + 1e-6 for v in explore(matched) + explore("DoorKey-5x5"))
    assert not explore(below) and scalars(exp, tags.UNTAUGHT_ENTROPY_LOSS)
    assert matched in ck["kickstart"]["untaught"] and below not in ck["kickstart"]["untaught"]

    _write_map(teachers, {below: 100.0, matched: 100.0}, teacher)  # the bar on `matched` is raised: below it now
    resumed = run_train(args(12000))
    assert resumed.returncode == 0, describe(resumed)
    restored = [line for line in (resumed.stdout + resumed.stderr).splitlines() if "Restored kickstart weights" in line]
    assert restored and f"'{matched}': 0.0" in restored[0]  # g_k came back from the checkpoint as 0 ...
    after = [v for step, v in scalars(exp, tags.task_lambda(matched)) if step > ck["env_steps"]]
    assert after and after[-1] > 0.0, after  # ... and rose once the student's score on the task reached the learner
    # taught now: no entropy bonus on it after the resume
    assert not [v for step, v in scalars(exp, tags.task_exploration(matched)) if step > ck["env_steps"]]
