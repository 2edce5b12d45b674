"""KickstartWeights: the one owner of λ_i = α(t)·ρ_i, its checkpoint state and what PBT sets."""

import numpy as np
import pytest

from sf_kickstart.kickstart.schedules import KickstartSchedule
from sf_kickstart.teachers import TeacherRouting, TeacherSpec
from sf_kickstart.kickstart.weights import KickstartWeights


def _weights():
    return KickstartWeights(KickstartSchedule("linear", 2.0, end_frames=100), ["a", "b"], [1.0, 0.5])


def test_lambdas_are_alpha_times_rho():
    w = _weights()
    assert w.alpha(50) == pytest.approx(1.0)
    assert np.allclose(w.lambdas(50), [1.0, 0.5])


def test_pbt_sets_alpha_and_rho_and_the_rest_of_its_cfg_goes_on():
    w = _weights()
    rest = w.pop_hyperparameters({"kickstart_lambda": 4.0, "kickstart_rho": {"b": 3.0, "gone": 9.0}, "learning_rate": 1e-3})
    assert rest == {"learning_rate": 1e-3}
    assert w.alpha_scale == 4.0 and np.allclose(w.rho, [1.0, 3.0])
    w.set_hyperparameters(alpha_scale=-1.0, rho=[-2.0, 0.25])  # clipped at 0
    assert w.hyperparameters() == {"kickstart_lambda": 0.0, "kickstart_rho": {"a": 0.0, "b": 0.25}}
    with pytest.raises(ValueError):
        w.set_hyperparameters(rho=[1.0])


def test_checkpoint_state_roundtrip():
    w = _weights()
    w.set_hyperparameters(alpha_scale=3.0, rho={"a": 0.1})
    state = w.state_dict(frames=25)
    assert state["alpha"] == pytest.approx(3.0 * 0.75) and state["env_steps"] == 25
    restored = _weights()
    restored.load_state_dict(state)
    assert restored.hyperparameters() == w.hyperparameters()
    assert np.allclose(restored.lambdas(25), w.lambdas(25))
    alone = KickstartWeights.from_state_dict(state)  # outside a run (sf_kickstart.tune): the entry's own schedule
    assert alone.teacher_names == ["a", "b"] and alone.hyperparameters() == w.hyperparameters()
    assert alone.schedule == w.schedule and alone.state_dict(25) == state


def test_routing_maps_tasks_to_their_teacher():
    specs = [TeacherSpec("/t/a", tasks=["x", "z"]), TeacherSpec("/t/b", tasks=["y"])]
    r = TeacherRouting.of(specs, ["x", "y", "z", "w"])
    assert r.teacher_of_task == (0, 1, 0, -1) and not r.every_task_has_a_teacher
    assert list(r.teacher_of_rows(np.array([3, 2, 1]), 3)) == [-1, 0, 1]
    assert list(r.teacher_of_rows(None, 2)) == [0, 0]  # no task id: every row is task 0


# ------------------------------------------------------------------------------------------------- adaptive λ
def _adaptive(scores=(50.0, 20.0)):
    return KickstartWeights(KickstartSchedule("adaptive", 2.0), ["a", "b"], [1.0, 0.5], teacher_scores=scores)


def test_adaptive_lambda_by_hand():
    w = _adaptive()
    assert np.allclose(w.lambdas(0), [2.0, 1.0])  # no student score yet: α·ρ_i
    w.observe_student_scores({"a": 10.0})  # 1 - 10/50 = 0.8; b not seen yet
    assert np.allclose(w.lambdas(123), [2.0 * 0.8, 1.0])
    w.observe_student_scores({"a": 40.0, "b": 5.0})  # a: 0.2, b: 0.75
    assert np.allclose(w.lambdas(0), [0.4, 0.75])
    w.observe_student_scores({"a": 0.0, "b": 30.0})  # a never rises again (running min); b: clip(1 - 1.5) = 0
    assert np.allclose(w.lambdas(0), [0.4, 0.0])
    w.observe_student_scores({"a": -100.0, "b": 0.0, "unknown": 1.0, })
    assert np.allclose(w.lambdas(0), [0.4, 0.0])


def test_adaptive_state_survives_checkpoint_and_other_schedules_ignore_scores():
    w = _adaptive()
    w.observe_student_scores({"a": 25.0, "b": 30.0})
    state = w.state_dict(frames=10)
    assert state["adaptive"] == {"a": 0.5, "b": 0.0}
    restored = _adaptive()
    restored.load_state_dict(state)
    assert np.allclose(restored.lambdas(0), [1.0, 0.0])
    old = {k: v for k, v in state.items() if k != "adaptive"}  # a checkpoint from before adaptive λ: factor 1
    fresh = _adaptive()
    fresh.load_state_dict(old)
    assert np.allclose(fresh.factor, [1.0, 1.0])
    plain = _weights()
    plain.observe_student_scores({"a": 1e9})
    assert np.allclose(plain.lambdas(50), [1.0, 0.5])
    with pytest.raises(ValueError):
        KickstartWeights(KickstartSchedule("adaptive", 1.0), ["a"], [1.0])  # adaptive without G_T
