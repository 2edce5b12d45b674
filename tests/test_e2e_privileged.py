"""End to end on CPU, a privileged teacher: a tiny full-state teacher trained by *plain Sample Factory*'s MuJoCo
example (`python -m sf_examples.mujoco.train_mujoco`) on `mujoco_halfcheetah` kickstarts a recurrent student on `mujoco_halfcheetah_pomdp` restricted to its partial key.

What is proven here:
  * the student's model takes only its own key: its checkpoint has no weight and no normaliser statistic for the
    privileged "state", it loads strictly into a model built on {"obs": Box(8,)} alone, and evaluation rebuilds it on
    that key (its config's --student_obs_keys);
  * the teacher reads the privileged key: the buffers hold both keys (the partial "obs" is "state" without its
    velocities), and the teacher logits stored at rollout equal the teacher's own forward on the dumped "state" (its
    "obs" mapped onto "state", its own normaliser applied) and depend on the velocities the student never sees;
  * a feed-forward teacher next to a recurrent student: the teacher's one-column state slot rides along, the student's
    GRU state is its own.
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
import torch
from gymnasium import spaces

from tests.e2e_utils import FAST, describe, latest_checkpoint, run_train, trained_experiment

pytestmark = pytest.mark.e2e
pytest.importorskip("mujoco")

POMDP = "mujoco_halfcheetah_pomdp"
ONE_WORKER = ["--num_workers=1", "--num_envs_per_worker=4", "--worker_num_splits=2"]


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("train_dir"))


@pytest.fixture(scope="module")
def full_state_teacher(train_dir):
    """Sample Factory's own MuJoCo example on the full-state task, its own defaults (feed-forward, learned log-std,
    normalised inputs), tiny."""
    proc = run_train(
        [
            "--env=mujoco_halfcheetah", "--experiment=cheetah_teacher", f"--train_dir={train_dir}",
            "--train_for_env_steps=3000", "--encoder_mlp_layers", "16", *FAST, *ONE_WORKER,
        ],
        timeout=300, module="sf_examples.mujoco.train_mujoco",
    )
    return trained_experiment(proc, train_dir, "cheetah_teacher")


@pytest.fixture(scope="module")
def student(train_dir, full_state_teacher):
    proc = run_train(
        [
            "--preset=mujoco_pomdp_student.yaml",  # --student_obs_keys=obs, a GRU
            f"--env={POMDP}", "--experiment=pomdp_student", f"--train_dir={train_dir}",
            f"--teacher={full_state_teacher}", "--teacher_obs_map=obs:state",
            "--kickstart_schedule=constant", "--kickstart_lambda=0.5", "--kickstart_debug_dump=2",
            "--train_for_env_steps=1500", "--encoder_mlp_layers", "32", "--rnn_size=16", *FAST, *ONE_WORKER,
        ]
    )
    assert proc.returncode == 0, describe(proc)
    return os.path.join(train_dir, "pomdp_student")


def _spaces():
    from sf_kickstart.suites import mujoco

    env = mujoco.make_mujoco_pomdp_env(POMDP)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def test_student_model_takes_only_its_own_key(student):
    from sample_factory.model.actor_critic import create_actor_critic
    from sample_factory.utils.attr_dict import AttrDict

    from sf_kickstart.agents.agent import load_agent

    obs_space, action_space = _spaces()
    with open(os.path.join(student, "config.json")) as f:
        cfg = AttrDict(json.load(f))
    assert cfg.student_obs_keys == "obs" and cfg.use_rnn
    ckpt = latest_checkpoint(student)
    assert not any("state" in k for k in ckpt["model"]), [k for k in ckpt["model"] if "state" in k]
    assert ckpt["model"]["encoder.encoders.obs.mlp_head.0.weight"].shape[1] == obs_space["obs"].shape[0] == 8
    partial_only = create_actor_critic(cfg, spaces.Dict({"obs": obs_space["obs"]}), action_space)
    partial_only.load_state_dict(ckpt["model"], strict=True)  # nothing in it reads "state"
    assert set(ckpt["model"]) == set(partial_only.state_dict())
    assert len(ckpt["optimizer"]["param_groups"][0]["params"]) == len(list(partial_only.parameters()))
    # evaluation / enjoy rebuild it from its config on the same key, from the env's full observation space
    agent = load_agent(student, obs_space, action_space)
    assert agent.obs_keys == ["obs"] and agent.input_keys == ["obs"]
    assert list(agent.model.obs_normalizer.running_mean_std.running_mean_std) == ["obs"]


def test_teacher_reads_the_privileged_key(student, full_state_teacher):
    from sf_kickstart.suites import mujoco
    from sf_kickstart.teachers import FrozenTeacher, TeacherSpec

    obs_space, action_space = _spaces()
    spec = TeacherSpec(path=full_state_teacher, obs_map={"obs": "state"}, obs_keys=["obs"])
    teacher = FrozenTeacher(spec, obs_space, action_space, fast=False)
    assert teacher.rnn_size == 1  # feed-forward
    hidden = mujoco.hidden_indices(POMDP)
    keep = np.setdiff1d(np.arange(17), hidden)
    dumps = sorted(glob.glob(os.path.join(student, "kickstart_debug", "p0", "batch_*.pt")))
    assert len(dumps) == 2
    for path in dumps:
        d = torch.load(path, weights_only=False)
        obs = d["obs"]
        assert set(obs) == {"obs", "state"} and obs["state"].shape[1:] == (17,) and obs["obs"].shape[1:] == (8,)
        assert torch.equal(obs["obs"], obs["state"][:, keep])  # the student's key is the state without velocities
        assert obs["state"][:, hidden].abs().sum() > 0
        assert d["teacher_idx"].eq(0).all()
        n = d["teacher_logits"].shape[0]
        logits, _ = teacher.forward(obs, d["teacher_rnn"][:, :1])
        assert torch.allclose(logits, d["teacher_logits"], atol=1e-5), "stored logits differ from the teacher's"
        # recomputed from the privileged key: without the velocities (what the student sees), other logits
        blind = obs["state"].clone()
        blind[:, hidden] = 0
        blind_logits, _ = teacher.forward(dict(obs, state=blind), d["teacher_rnn"][:, :1])
        assert not torch.allclose(blind_logits, d["teacher_logits"], atol=1e-3)
        assert torch.allclose(d["weights"], torch.full((n,), 0.5))
        assert d["loss"] > 0
