"""Adaptive λ's inputs: the teachers' scores G_T,i (map or evaluation cache) and the student's G_S,i per teacher."""

import json
import os

import pytest

from sf_kickstart.kickstart import adaptive
from sf_kickstart.sf import setup
from sf_kickstart.kickstart.schedules import KickstartSchedule, ScheduleError
from sf_kickstart.kickstart.weights import KickstartWeights
from sf_kickstart.teachers import TeacherSpec


def _spec(tmp_path, name="t", tasks=("x", "y"), task_scores=None):
    path = os.path.join(str(tmp_path), name)
    os.makedirs(path, exist_ok=True)
    return TeacherSpec(path=path, tasks=list(tasks), task_scores=dict(task_scores or {}))


def _write_cache(exp_dir, tasks):
    """The evaluation cache as sf_kickstart.evaluate writes it (only the fields adaptive λ reads need values)."""
    os.makedirs(os.path.join(exp_dir, "evaluation"), exist_ok=True)
    data = {
        "format": "sf_kickstart.scores/1",
        "score_kind": "capped_normalized",
        "tasks": {t: {"score": s, "mean_return": s, "normalized": s} for t, s in tasks.items()},
        "suite_score": sum(tasks.values()) / len(tasks),
    }
    with open(os.path.join(exp_dir, "evaluation", "scores_greedy_p0.json"), "w") as f:
        json.dump(data, f)


def test_teacher_score_from_the_map_is_the_mean_over_its_tasks(tmp_path):
    assert setup.resolve_teacher_scores([_spec(tmp_path, task_scores={"x": 30.0, "y": 50.0})]) == [40.0]


def test_missing_or_unusable_teacher_score_is_a_clear_error(tmp_path):
    with pytest.raises(ScheduleError, match="sf_kickstart.evaluate"):
        setup.resolve_teacher_scores([_spec(tmp_path)])
    with pytest.raises(ScheduleError, match="> 0"):  # a plain env's return: the ratio needs G_T > 0
        setup.resolve_teacher_scores([_spec(tmp_path, task_scores={"x": 0.0})], has_task_scores=False)
    with pytest.raises(ScheduleError, match="nan"):
        setup.resolve_teacher_scores([_spec(tmp_path, task_scores={"x": float("nan")})])


def test_teacher_no_better_than_random_on_a_suite_never_supervises(tmp_path):
    """Suite scale: 0 is a random agent, so a teacher at G_T <= 0 is matched before training: f_i = 0 throughout."""
    from sf_kickstart.kickstart.weights import adaptive_factor

    good, bad = _spec(tmp_path, "good", task_scores={"x": 40.0}), _spec(tmp_path, "bad", task_scores={"y": -1.1})
    scores = setup.resolve_teacher_scores([good, bad])
    assert scores == [40.0, -1.1]
    w = KickstartWeights(KickstartSchedule("adaptive", 1.0), ["good", "bad"], [1.0, 1.0], scores)
    assert list(w.lambdas(0)) == [1.0, 0.0]
    w.observe_student_scores({"good": 10.0, "bad": -50.0})  # a student below the bad teacher does not revive it
    assert list(w.lambdas(1000)) == [0.75, 0.0]
    assert adaptive_factor(-50.0, -1.1) == 0.0 and adaptive_factor(0.0, 0.0) == 0.0


def test_teacher_score_from_the_evaluation_cache(tmp_path):
    spec = _spec(tmp_path, tasks=("x", "y"))
    _write_cache(spec.path, {"x": 10.0, "y": 30.0, "z": 99.0})  # z is not this teacher's task
    assert setup.resolve_teacher_scores([spec]) == [20.0]
    single = _spec(tmp_path, name="gym", tasks=("CartPole-v1",))
    _write_cache(single.path, {"CartPole-v1": 50.0})
    assert setup.resolve_teacher_scores([single], has_task_scores=False) == [50.0]


def test_student_scores_per_teacher_once_all_its_tasks_reported(tmp_path):
    a = _spec(tmp_path, "a", tasks=("x", "y"))
    b = _spec(tmp_path, "b", tasks=("z",))
    assert adaptive.student_scores({"x": 10.0, "y": 20.0, "q": 99.0}, [a, b]) == {"a": 15.0}
    assert adaptive.student_scores({"x": 90.0, "z": -5.0}, [a, b]) == {"b": -5.0}  # a: y has not reported yet


def test_teachers_map_score_entries(tmp_path):
    from sf_kickstart.teachers.spec import TeacherError, parse_teacher_map
    from tests.e2e_utils import make_teacher_dir

    teacher = make_teacher_dir(os.path.join(str(tmp_path), "teacher"))
    good = os.path.join(str(tmp_path), "map.yaml")
    with open(good, "w") as f:
        f.write(f"x: {{path: {teacher}, score: 12.5}}\ny: {teacher}\n")
    (spec,) = parse_teacher_map(good, None, ["x", "y"])
    assert spec.tasks == ["x", "y"] and spec.task_scores == {"x": 12.5}
    bad = os.path.join(str(tmp_path), "bad.yaml")
    with open(bad, "w") as f:
        f.write(f"x: {{path: {teacher}, score: high}}\n")
    with pytest.raises(TeacherError, match="score"):
        parse_teacher_map(bad, None, ["x"])
