"""Per-task policy entropy (`train/task_entropy/<task>`, and the teacher's `kickstart/task_teacher_entropy/<task>`):
by hand on a synthetic minibatch, through a real KickstartLearner (in-process: from scratch and kickstarted), and end
to end on the MiniGrid suite (short CPU runs, read back from their tensorboard summaries)."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from sf_kickstart import tags
from sf_kickstart.kickstart.loss import per_task_means
from sf_kickstart.sf.learner import task_entropies
from sf_kickstart.sf.observers import kickstart_tags
from tests.e2e_utils import make_teacher_dir


def _entropy(p):
    return -sum(x * math.log(x) for x in p if x > 0)


# the distributions of a synthetic minibatch: (task id, valid, action probabilities)
P_A, P_B, P_C, P_D = [1 / 3] * 3, [0.5, 0.25, 0.25], [0.8, 0.1, 0.1], [1.0, 0.0, 0.0]
MINIBATCH = [(0, True, P_A), (0, True, P_B), (0, False, P_D), (1, True, P_C), (1, False, P_A)]


def test_per_task_entropy_of_a_synthetic_minibatch_is_the_by_hand_mean_over_its_valid_steps():
    from gymnasium import spaces
    from sample_factory.algo.utils.action_distributions import get_action_distribution

    logits = torch.log(torch.tensor([p for _, _, p in MINIBATCH]).clamp_min(1e-30))
    task_idx = torch.tensor([k for k, _, _ in MINIBATCH])
    valids = torch.tensor([v for _, v, _ in MINIBATCH])
    distribution = get_action_distribution(spaces.Discrete(3), logits)  # SF's, as its learner builds it
    out = task_entropies(distribution, task_idx, valids, ("A", "B", "C"))
    # A: ln 3 and 1.5 ln 2 (the invalid deterministic step, entropy 0, left out); B: its one valid step; C: no step
    assert out == pytest.approx({"A": (math.log(3) + 1.5 * math.log(2)) / 2, "B": _entropy(P_C)})
    assert per_task_means(torch.ones(5), task_idx, torch.zeros(5, dtype=torch.bool), ("A", "B")) == {}


def test_the_tags_have_their_own_prefixes():
    assert tags.task_entropy("DoorKey-5x5") == "train/task_entropy/DoorKey-5x5"
    assert tags.train_key(tags.task_entropy("x")) == "task_entropy/x"  # the stats key SF writes as that tag
    assert tags.task_teacher_entropy("DoorKey-5x5") == "kickstart/task_teacher_entropy/DoorKey-5x5"


# ------------------------------------------------------------------------------------------------ a real learner
ROLLOUT = 8
TASKS = ["Empty-Random-6x6", "DoorKey-5x5", "DoorKey-8x8", "KeyCorridorS3R1"]  # task ids 0-3 of the suite


def _learner(tmp_path, supervised=()):
    """A KickstartLearner of a minigrid_suite run: from scratch, or with one teacher on the `supervised` tasks."""
    from sample_factory.algo.utils.model_sharing import ParameterServer
    from sample_factory.utils.attr_dict import AttrDict

    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf import setup
    from sf_kickstart.sf.learner import KickstartLearner

    teachers = []
    if supervised:
        teacher = make_teacher_dir(os.path.join(str(tmp_path), "teacher"))
        path = os.path.join(str(tmp_path), "teachers.yaml")
        with open(path, "w") as f:
            json.dump({task: {"path": teacher} for task in supervised}, f)  # JSON is YAML
        teachers = [f"--teachers={path}", "--kickstart_schedule=constant", "--kickstart_lambda=1"]
    cfg, suite = setup.parse_args([
        "--env=minigrid_suite", "--experiment=unit", f"--train_dir={tmp_path}", "--device=cpu", *teachers,
        "--encoder_mlp_layers", "16", "--rnn_size=32", f"--rollout={ROLLOUT}", f"--recurrence={ROLLOUT}",
        f"--batch_size={len(TASKS) * ROLLOUT}", "--num_batches_per_epoch=1", "--num_epochs=1",
    ])
    cfg = AttrDict(vars(cfg))
    env_info = make_env_info(cfg)
    layout = setup.build_layout(cfg, suite, env_info) if supervised else None
    versions = torch.zeros([1], dtype=torch.int32)
    learner = KickstartLearner(cfg, env_info, versions, 0, ParameterServer(0, versions, False), layout=layout)
    learner.init()
    return learner, env_info, layout


def _batch(learner, env_info, layout, invalid=()):
    """One trajectory per task of TASKS, all its steps valid except those of the trajectories in `invalid` (from
    another policy); with a teacher, trajectory k's teacher logits are those of P_B (k even) or P_C (k odd)."""
    from sample_factory.algo.utils.shared_buffers import alloc_trajectory_tensors
    from sample_factory.model.model_utils import get_rnn_size

    from sf_kickstart.sf.storage import alloc_kickstart_trajectory_tensors
    from sf_kickstart.suites.registry import TASK_ID_KEY

    n, gen = len(TASKS), torch.Generator().manual_seed(0)
    if layout is None:
        b = alloc_trajectory_tensors(env_info, n, ROLLOUT, get_rnn_size(learner.cfg), "cpu", False)
    else:
        b = alloc_kickstart_trajectory_tensors(env_info, n, ROLLOUT, layout, "cpu", False)
        probs = torch.tensor([P_B if k % 2 == 0 else P_C for k in range(n)])
        b["teacher_logits"].fill_(-1e9)  # 7 actions, 3 of them possible: the teacher's entropy is H(P)
        b["teacher_logits"][..., :3] = torch.log(probs)[:, None]
        b["teacher_idx"][:] = torch.tensor(layout.routing.teacher_of_task[:n], dtype=torch.float32)[:, None]
    b["obs"][TASK_ID_KEY][:] = torch.nn.functional.one_hot(torch.arange(n), b["obs"][TASK_ID_KEY].shape[-1])[:, None]
    b["obs"]["obs"].random_(0, 2, generator=gen)
    for key in ("rnn_states", "actions", "values", "rewards", "policy_version"):
        b[key].zero_()
    b["action_logits"].normal_(generator=gen)
    b["log_prob_actions"][:] = torch.log_softmax(b["action_logits"], -1)[..., 0]
    b["dones"].fill_(False)
    b["valids"].fill_(True)
    b["policy_id"].zero_()
    b["policy_id"][list(invalid)] = 1  # another policy's experience: SF's learner marks it invalid
    return b


def _train_stats(learner, batch):
    learner.last_summary_time = 0  # summaries at this step
    return learner.train(batch)


def test_a_from_scratch_learner_writes_each_tasks_entropy_with_its_training_stats(tmp_path):
    learner, env_info, _ = _learner(tmp_path)
    assert learner.task_names[: len(TASKS)] == TASKS and len(learner.task_names) == 9
    stats = _train_stats(learner, _batch(learner, env_info, None))
    train = stats["train"]
    per_task = {task: train[tags.train_key(tags.task_entropy(task))] for task in TASKS}
    assert all(0.0 < h <= math.log(7) for h in per_task.values()), per_task
    # every step valid, one trajectory per task: the tasks' means average to SF's train/entropy of the minibatch
    assert sum(per_task.values()) / len(TASKS) == pytest.approx(train["entropy"], rel=1e-5)
    assert not [k for k in train if k.startswith("task_entropy/") and k[len("task_entropy/"):] not in TASKS]
    assert tags.KS_STATS_MSG not in stats  # no teacher: no kickstart message


def test_a_kickstarted_learner_writes_its_teachers_entropy_per_supervised_task(tmp_path):
    learner, env_info, layout = _learner(tmp_path, supervised=TASKS[:3])  # KeyCorridorS3R1: no teacher
    # trajectory 2 (DoorKey-8x8) comes from another policy: invalid, so that task has no entropy at all
    stats = _train_stats(learner, _batch(learner, env_info, layout, invalid=[2]))
    msg, train = stats[tags.KS_STATS_MSG], stats["train"]
    # the teacher's H(π_T) of the stored logits, on its tasks' valid steps only
    assert msg["task_teacher_entropy"] == pytest.approx({TASKS[0]: _entropy(P_B), TASKS[1]: _entropy(P_C)})
    assert {k for k in train if k.startswith("task_entropy/")} == {f"task_entropy/{t}" for t in TASKS if t != TASKS[2]}
    written = kickstart_tags(msg)  # what the runner writes
    assert written[tags.task_teacher_entropy(TASKS[1])] == pytest.approx(_entropy(P_C))

# End to end (a from-scratch and a kickstarted run on the suite): tests/test_evaluate_e2e.py, on the runs it makes.
