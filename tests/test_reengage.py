"""Re-engaging per-task λ (`--kickstart_schedule=reengage`), by hand: λ_k = α·ρ_i(k)·clip(1 − G_S,k / G_T,k, 0, 1)
from the student's current running score on task k; its checkpoint state; its G_T,k; PBT's α and ρ_i; and a real
KickstartLearner (in-process) weighting each sample by its task's λ_k."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from sf_kickstart.kickstart.schedules import KickstartSchedule, ScheduleError
from sf_kickstart.kickstart.weights import KickstartWeights, TaskTargets
from sf_kickstart.sf import setup
from tests.test_adaptive import _spec, _write_cache

# tasks x, y (teacher a, ρ 1), z (teacher b, ρ 0.5), w (no teacher); α = 2
TASKS = TaskTargets(("x", "y", "z", "w"), (0, 0, 1, -1), (50.0, 80.0, 20.0, None))


def _weights(tasks=TASKS, alpha=2.0):
    return KickstartWeights(KickstartSchedule("reengage", alpha), ["a", "b"], [1.0, 0.5], tasks=tasks)


def test_before_any_student_score_every_supervised_task_gets_the_schedules_value():
    w = _weights()
    assert np.allclose(w.task_lambdas(0), [2.0, 2.0, 1.0, 0.0])  # α·ρ_i(k); w has no teacher
    assert np.allclose(w.lambdas(0), [2.0, 1.0])  # λ_i = α·ρ_i: the most a task of teacher i gets
    assert w.alpha(10**9) == 2.0  # α is constant: re-engagement never switches off with it


def test_proportional_to_the_shortfall_by_hand():
    w = _weights()
    w.observe_task_scores({"x": 10.0, "y": 60.0})  # x: 1 − 10/50 = 0.8; y: 1 − 60/80 = 0.25; z not seen: 1
    assert w.task_factors() == pytest.approx({"x": 0.8, "y": 0.25, "z": 1.0})
    assert np.allclose(w.task_lambdas(123), [2 * 0.8, 2 * 0.25, 1.0, 0.0])
    w.observe_task_scores({"z": 15.0, "x": -30.0, "w": 0.0, "nope": 1.0})  # z: 0.25; x below random: clipped to 1
    assert np.allclose(w.task_lambdas(0), [2.0, 0.5, 2 * 0.5 * 0.25, 0.0])
    w.observe_task_scores({"y": float("nan"), "x": None})  # not a score: ignored
    assert np.allclose(w.task_lambdas(0), [2.0, 0.5, 0.25, 0.0])


def test_a_mastered_task_gets_zero_and_its_teacher_back_when_the_student_falls_below():
    w = _weights()
    w.observe_task_scores({"x": 50.0, "y": 95.0})  # x matched, y surpassed: the student is free there
    assert np.allclose(w.task_lambdas(0), [0.0, 0.0, 1.0, 0.0])
    w.observe_task_scores({"x": 75.0, "y": 100.0})  # still above: stays 0
    assert np.allclose(w.task_lambdas(0)[:2], [0.0, 0.0])
    w.observe_task_scores({"y": 40.0})  # y forgotten halfway: 1 − 40/80 = 0.5, its teacher is back
    assert np.allclose(w.task_lambdas(0), [0.0, 1.0, 1.0, 0.0])
    w.observe_task_scores({"y": 80.0})  # recovered: off again (no running minimum, no hysteresis)
    assert w.task_lambdas(0)[1] == 0.0


def test_a_teacher_no_better_than_random_on_a_task_never_supervises_it():
    w = _weights(TaskTargets(("x", "y"), (0, 0), (-1.0, 40.0)))
    assert np.allclose(w.task_lambdas(0), [0.0, 2.0])
    w.observe_task_scores({"x": -50.0})  # a student below such a teacher does not bring it back
    assert w.task_lambdas(0)[0] == 0.0


def test_other_schedules_weight_tasks_by_their_teacher_and_ignore_task_scores():
    plain = KickstartWeights(KickstartSchedule("constant", 2.0), ["a", "b"], [1.0, 0.5], tasks=TASKS)
    plain.observe_task_scores({"x": 1e9})
    assert np.allclose(plain.task_lambdas(0), [2.0, 2.0, 1.0, 0.0]) and "reengage" not in plain.state_dict(0)
    adaptive = KickstartWeights(KickstartSchedule("adaptive", 2.0), ["a", "b"], [1.0, 0.5], [50.0, 20.0], TASKS)
    adaptive.observe_student_scores({"a": 25.0})  # f_a = 0.5 reaches a's tasks
    assert np.allclose(adaptive.task_lambdas(0), [1.0, 1.0, 1.0, 0.0])


def test_pbt_alpha_and_rho_still_scale_every_task_lambda():
    w = _weights()
    w.observe_task_scores({"x": 25.0, "z": 10.0})  # g = 0.5, 1, 0.5
    rest = w.pop_hyperparameters({"kickstart_lambda": 4.0, "kickstart_rho": {"b": 2.0}, "learning_rate": 1e-3})
    assert rest == {"learning_rate": 1e-3}
    assert np.allclose(w.task_lambdas(0), [4 * 1 * 0.5, 4 * 1 * 1.0, 4 * 2 * 0.5, 0.0])
    w.set_hyperparameters(alpha_scale=0.0)  # PBT's zero floor: no teacher anywhere, whatever g_k says
    assert np.allclose(w.task_lambdas(0), 0.0)


def test_state_roundtrips_old_checkpoints_start_at_one_and_tune_reads_it_alone():
    w = _weights()
    w.observe_task_scores({"x": 40.0, "y": 100.0})  # 0.2, 0
    state = w.state_dict(frames=7)
    assert state["reengage"] == {
        "x": dict(teacher="a", teacher_score=50.0, factor=pytest.approx(0.2)),
        "y": dict(teacher="a", teacher_score=80.0, factor=0.0),
        "z": dict(teacher="b", teacher_score=20.0, factor=1.0),
    }
    restored = _weights()
    restored.load_state_dict(state)
    assert np.allclose(restored.task_lambdas(0), w.task_lambdas(0))
    old = _weights()
    old.load_state_dict({k: v for k, v in state.items() if k != "reengage"})  # from before re-engaging λ
    assert np.allclose(old.task_factor[:3], 1.0)
    alone = KickstartWeights.from_state_dict(state)  # outside a run (sf_kickstart.tune's checkpoint_state)
    assert alone.reengage and alone.state_dict(7) == state
    assert alone.task_lambdas(0) == pytest.approx(w.task_lambdas(0)[:3])
    exploit = _weights()  # a PBT exploit copies the source's g_k (with its weights), never its α or ρ
    exploit.set_hyperparameters(alpha_scale=3.0)
    exploit.load_task_factors(state)
    assert exploit.task_factors() == w.task_factors() and exploit.alpha_scale == 3.0


def test_adaptive_state_is_readable_alone_too():
    """Tune's checkpoint_state rebuilds the weights from the checkpoint entry: adaptive's needs the G_T it saved."""
    w = KickstartWeights(KickstartSchedule("adaptive", 1.0), ["a"], [1.0], [40.0])
    w.observe_student_scores({"a": 30.0})
    state = w.state_dict(5)
    assert KickstartWeights.from_state_dict(state).state_dict(5) == state


def test_reengage_needs_a_teacher_score_on_every_supervised_task():
    with pytest.raises(ValueError, match="G_T,k"):
        _weights(TaskTargets(("x", "y"), (0, 0), (50.0, None)))
    with pytest.raises(ValueError, match="G_T,k"):
        _weights(TaskTargets(("x",), (0,)))
    _weights(TaskTargets(("x", "w"), (0, -1), (50.0, None)))  # a task without a teacher needs none


# ------------------------------------------------------------------------------------------------- G_T,k per task
def test_teacher_scores_per_task_from_the_map_else_the_cache(tmp_path):
    spec = _spec(tmp_path, "t", tasks=("x", "y", "z"), task_scores={"y": 12.5})
    _write_cache(spec.path, {"x": 30.0, "y": 99.0, "z": 70.0})  # the map's y wins over the cache's
    other = _spec(tmp_path, "u", tasks=("v",), task_scores={"v": 8.0})
    scores = setup.resolve_task_teacher_scores([spec, other], ["v", "w", "x", "y", "z"])
    assert scores == [8.0, None, 30.0, 12.5, 70.0]  # w has no teacher


def test_a_missing_teacher_score_is_one_error_naming_the_tasks(tmp_path):
    spec = _spec(tmp_path, "t", tasks=("x", "y", "z"), task_scores={"y": 12.5})
    _write_cache(spec.path, {"x": 30.0})
    with pytest.raises(ScheduleError) as err:
        setup.resolve_task_teacher_scores([spec], ["x", "y", "z"])
    text = str(err.value)
    assert "['z']" in text and "'t'" in text and "reengage" in text and "sf_kickstart.evaluate" in text
    assert "'x'" not in text  # tasks that have a score are not named
    bare = _spec(tmp_path, "bare", tasks=("x", "y"))
    with pytest.raises(ScheduleError, match=r"\['x', 'y'\]"):
        setup.resolve_task_teacher_scores([bare], ["x", "y"])


def test_unusable_teacher_scores(tmp_path):
    with pytest.raises(ScheduleError, match="> 0"):  # a plain env's return: the ratio needs G_T > 0
        setup.resolve_task_teacher_scores([_spec(tmp_path, tasks=("Env-v1",), task_scores={"Env-v1": 0.0})],
                                          ["Env-v1"], has_task_scores=False)
    single = _spec(tmp_path, "gym", tasks=("CartPole-v1",))
    _write_cache(single.path, {"SomeOtherName": 50.0})  # one task, one cached score: it is the teacher's
    assert setup.resolve_task_teacher_scores([single], ["CartPole-v1"], has_task_scores=False) == [50.0]
    below_random = _spec(tmp_path, "weak", tasks=("x",), task_scores={"x": -3.0})  # suite scale: kept, λ 0
    assert setup.resolve_task_teacher_scores([below_random], ["x"]) == [-3.0]


# ------------------------------------------------------------------------------------------------ a real learner
def _batch(layout, env_info, tasks, teacher_idx, rollout):
    """A training batch as SF's batcher hands it over: one trajectory per entry of `tasks` (its task id), valid,
    from policy 0, with random logits."""
    from sf_kickstart.sf.storage import alloc_kickstart_trajectory_tensors
    from sf_kickstart.suites.registry import TASK_ID_KEY

    gen = torch.Generator().manual_seed(0)
    b = alloc_kickstart_trajectory_tensors(env_info, len(tasks), rollout, layout, "cpu", False)
    num_tasks = b["obs"][TASK_ID_KEY].shape[-1]
    b["obs"][TASK_ID_KEY][:] = torch.nn.functional.one_hot(torch.tensor(tasks), num_tasks)[:, None].float()
    b["obs"]["obs"].random_(0, 2, generator=gen)
    b["rnn_states"].zero_()
    b["action_logits"].normal_(generator=gen)
    b["actions"].zero_()
    b["log_prob_actions"][:] = torch.log_softmax(b["action_logits"], -1)[..., 0]
    b["values"].zero_()
    b["rewards"].zero_()
    b["dones"].fill_(False)
    b["policy_id"].zero_()
    b["policy_version"].zero_()
    b["valids"].fill_(True)
    b["teacher_logits"].normal_(generator=gen)
    b["teacher_idx"][:] = torch.tensor(teacher_idx, dtype=torch.float32)[:, None]
    return b


ROLLOUT = 8
MAP_SCORES = {"Empty-Random-6x6": 50.0, "DoorKey-5x5": 80.0, "DoorKey-8x8": 40.0}


def _run_cfg(tmp_path, scores, *extra):
    """A minigrid_suite run's cfg with one teacher on the tasks of `scores` ({task: its map score, None: none})."""
    from sample_factory.utils.attr_dict import AttrDict

    from tests.e2e_utils import make_teacher_dir

    teacher = make_teacher_dir(os.path.join(str(tmp_path), "teacher"))
    path = os.path.join(str(tmp_path), "teachers.yaml")
    with open(path, "w") as f:
        entry = lambda s: {"path": teacher} if s is None else {"path": teacher, "score": s}  # noqa: E731
        json.dump({task: entry(s) for task, s in scores.items()}, f)
    cfg, suite = setup.parse_args([
        "--env=minigrid_suite", "--experiment=unit", f"--train_dir={tmp_path}", "--device=cpu", f"--teachers={path}",
        "--kickstart_schedule=reengage", "--kickstart_lambda=2", "--encoder_mlp_layers", "16", "--rnn_size=32",
        f"--rollout={ROLLOUT}", f"--recurrence={ROLLOUT}", f"--batch_size={4 * ROLLOUT}", "--num_batches_per_epoch=1",
        "--num_epochs=1", "--kickstart_debug_dump=2", *extra,
    ])
    return AttrDict(vars(cfg)), suite


def test_the_run_set_up_refuses_a_supervised_task_without_a_teacher_score(tmp_path):
    from sf_kickstart.envprobe import make_env_info

    cfg, suite = _run_cfg(tmp_path, {**MAP_SCORES, "MemoryS7": None})  # the map gives MemoryS7 no score, no cache
    with pytest.raises(ScheduleError, match=r"reengage needs teacher 'teacher'.s score on task\(s\) \['MemoryS7'\]"):
        setup.build_layout(cfg, suite, make_env_info(cfg))


@pytest.fixture()
def learner(tmp_path):
    """A KickstartLearner of a minigrid_suite run with one teacher on three tasks (G_T,k 50, 80, 40 from the map)."""
    from sample_factory.algo.utils.model_sharing import ParameterServer

    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf.learner import KickstartLearner

    cfg, suite = _run_cfg(tmp_path, MAP_SCORES)
    env_info = make_env_info(cfg)
    layout = setup.build_layout(cfg, suite, env_info)
    assert layout.task_teacher_scores[:3] == [50.0, 80.0, 40.0] and set(layout.task_teacher_scores[3:]) == {None}
    versions = torch.zeros([1], dtype=torch.int32)
    learner = KickstartLearner(cfg, env_info, versions, 0, ParameterServer(0, versions, False), layout=layout)
    learner.init()
    # task ids 0 (Empty-Random-6x6), 1 (DoorKey-5x5), 2 (DoorKey-8x8), 3 (KeyCorridorS3R1: no teacher)
    learner.test_batch = lambda: _batch(layout, env_info, [0, 1, 2, 3], [0, 0, 0, -1], ROLLOUT)
    return learner


def _train(learner):
    """One training step; returns (the kickstart stats message, the per-step λ the loss used, from the debug dump)."""
    from sf_kickstart import tags

    learner.last_summary_time = 0  # summaries at this step
    stats = learner.train(learner.test_batch())
    out_dir = os.path.join(learner.cfg.train_dir, "unit", "kickstart_debug", "p0")
    dump = torch.load(os.path.join(out_dir, sorted(os.listdir(out_dir))[-1]), weights_only=False)
    return stats[tags.KS_STATS_MSG], dump["weights"].view(4, -1)  # [trajectory (= task), step]


def test_a_real_learner_weights_each_step_by_its_tasks_lambda_and_reengages(learner):
    learner.weights.observe_task_scores({"Empty-Random-6x6": 50.0, "DoorKey-5x5": 20.0})  # mastered; 1 − 20/80
    msg, weights = _train(learner)
    assert weights[:, 0].tolist() == pytest.approx([0.0, 2 * 0.75, 2.0, 0.0])  # DoorKey-8x8 not reported: g = 1
    assert bool((weights == weights[:, :1]).all())  # every step of a trajectory: its task's λ
    supervised = {"Empty-Random-6x6": 0.0, "DoorKey-5x5": 1.5, "DoorKey-8x8": 2.0}
    assert msg["task_lambda"] == pytest.approx({**{t: 0.0 for t in msg["task_lambda"]}, **supervised})  # 9 tasks
    assert msg["task_factor"] == pytest.approx({"Empty-Random-6x6": 0.0, "DoorKey-5x5": 0.75, "DoorKey-8x8": 1.0})
    assert msg["lambda_teacher"] == 2.0  # α·ρ: the schedule's value

    learner.weights.observe_task_scores({"Empty-Random-6x6": 30.0})  # the student forgets Empty: 1 − 30/50 = 0.4
    msg, weights = _train(learner)
    assert weights[0, 0].item() == pytest.approx(0.8) and msg["task_lambda"]["Empty-Random-6x6"] == pytest.approx(0.8)


def test_a_real_learner_keeps_g_on_resume_copies_it_on_an_exploit_and_takes_alpha_rho_from_pbt(learner):
    learner.weights.observe_task_scores({"Empty-Random-6x6": 25.0})  # 0.5
    checkpoint = learner._get_checkpoint_dict()
    assert checkpoint["kickstart"]["reengage"]["Empty-Random-6x6"]["factor"] == 0.5
    checkpoint["kickstart"]["alpha_scale"] = 7.0
    learner.weights.observe_task_scores({"Empty-Random-6x6": 0.0})  # 1 again
    learner._load_state(checkpoint, load_progress=False)  # a PBT exploit: g_k from the source, α from the new cfg
    assert learner.weights.task_factors()["Empty-Random-6x6"] == 0.5 and learner.weights.alpha_scale == 2.0
    learner.new_cfg = {"kickstart_lambda": 4.0, "kickstart_rho": {"teacher": 0.25}}  # PBT's new cfg
    learner._maybe_update_cfg()
    assert learner.weights.task_lambdas(0)[:3] == pytest.approx([4 * 0.25 * 0.5, 1.0, 1.0])
    learner._load_state(checkpoint, load_progress=True)  # a resume: everything from the checkpoint
    assert learner.weights.alpha_scale == 7.0 and learner.weights.task_factors()["Empty-Random-6x6"] == 0.5
