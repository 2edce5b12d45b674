"""Sample Factory's own `InferenceWorker._handle_policy_steps`, run unchanged by our kickstart inference worker (in
process, serial parameter client, no runner): the outputs it stores are the student's own forward on the student's
part of `rnn_states`, and each step's teacher logits and teacher state are its teacher's own forward on the raw
observations and the tail of `rnn_states` (zero, with teacher index -1, for a task without a teacher)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.e2e_utils import make_teacher_dir

TEACHER_RNN, STUDENT_RNN = 48, 32
TASKS_OF_ROWS = [0, 5, 2, 8, 3, 1]  # the teacher supervises tasks 0-3


@pytest.fixture()
def worker(tmp_path, monkeypatch):
    from sample_factory.algo.utils.model_sharing import ParameterServer
    from sample_factory.algo.utils.shared_buffers import BufferMgr
    from sample_factory.model.actor_critic import create_actor_critic
    from sample_factory.utils.attr_dict import AttrDict
    from signal_slot.signal_slot import EventLoop

    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf.runner import KickstartInferenceWorker
    from sf_kickstart.sf.setup import parse_args
    from sf_kickstart.sf.storage import KickstartLayout, extend_buffers
    from sf_kickstart.teachers import TeacherRouting, TeacherSpec

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # what SF's runner sets before it allocates buffers
    cfg, suite = parse_args([
        "--env=minigrid_suite", "--experiment=iw", f"--train_dir={tmp_path}", "--device=cpu", "--serial_mode=True",
        "--num_workers=1", f"--num_envs_per_worker={len(TASKS_OF_ROWS)}", "--worker_num_splits=1", "--use_rnn=True",
        f"--rnn_size={STUDENT_RNN}", "--encoder_mlp_layers", "16",
    ])
    cfg = AttrDict(vars(cfg))
    info = make_env_info(cfg)
    tasks = suite.task_names(cfg.env)
    specs = [TeacherSpec(path=make_teacher_dir(str(tmp_path / "teacher"), rnn_size=TEACHER_RNN), tasks=tasks[:4])]
    layout = KickstartLayout(STUDENT_RNN, TEACHER_RNN, 7, specs=specs, routing=TeacherRouting.of(specs, tasks))
    buffers = BufferMgr(cfg, info)
    extend_buffers(buffers, cfg, info, layout)
    server = ParameterServer(0, buffers.policy_versions, True)
    torch.manual_seed(3)
    server.init(create_actor_critic(cfg, info.obs_space, info.action_space), 0, torch.device("cpu"))
    w = KickstartInferenceWorker(EventLoop("test"), 0, 0, buffers, server, None, cfg, info, layout=layout)
    w.init((0, None, torch.device("cpu"), 0))
    return w, cfg, info, specs[0]


def test_sf_handle_policy_steps_stores_the_students_and_the_teachers_own_outputs(worker):
    from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs

    from sf_kickstart.envprobe import probe_observations
    from sf_kickstart.teachers import FrozenTeacher

    w, cfg, info, spec = worker
    obs = probe_observations(cfg, steps=len(TASKS_OF_ROWS))
    obs["task_id"] = torch.eye(obs["task_id"].shape[1], dtype=obs["task_id"].dtype)[TASKS_OF_ROWS]
    traj = w.traj_tensors["cpu"]
    rows = [(traj_idx, step) for traj_idx, step in enumerate([0, 3, 5, 1, 7, 2])]
    gen = torch.Generator().manual_seed(0)
    for j, (traj_idx, step) in enumerate(rows):
        for key in traj["obs"]:
            traj["obs"][key][traj_idx, step] = obs[key][j].numpy()
        traj["rnn_states"][traj_idx, step] = (torch.rand(STUDENT_RNN + TEACHER_RNN, generator=gen) - 0.5).numpy()
    w.requests = [(0, 0, [(j, 0, traj_idx, step) for j, (traj_idx, step) in enumerate(rows)], "cpu")]

    w._handle_policy_steps(w.timing)  # Sample Factory's method

    stored = torch.as_tensor(w.policy_output_tensors["cpu"][0, 0, : len(rows), 0])
    out = dict(zip(w.buffer_mgr.output_names, torch.split(stored, list(w.buffer_mgr.output_sizes), dim=1)))
    raw = {k: torch.as_tensor(np.stack([traj["obs"][k][t, s] for t, s in rows])) for k in traj["obs"]}
    h = torch.as_tensor(np.stack([traj["rnn_states"][t, s] for t, s in rows]))
    student = w.param_client.actor_critic.student
    with torch.no_grad():
        ref = student(prepare_and_normalize_obs(student, dict(raw)), h[:, :STUDENT_RNN])
    close = lambda a, b: torch.allclose(a, b, atol=1e-5)  # noqa: E731
    assert close(out["action_logits"], ref["action_logits"]) and close(out["values"].flatten(), ref["values"])
    assert close(out["new_rnn_states"][:, :STUDENT_RNN], ref["new_rnn_states"])

    logits, new_h = FrozenTeacher(spec, info.obs_space, info.action_space).forward(raw, h[:, STUDENT_RNN:])
    supervised = torch.as_tensor(TASKS_OF_ROWS) < 4
    assert out["teacher_idx"].flatten().tolist() == [0.0 if s else -1.0 for s in supervised.tolist()]
    assert close(out["teacher_logits"][supervised], logits[supervised])
    assert close(out["new_rnn_states"][supervised, STUDENT_RNN:], new_h[supervised])
    assert not out["teacher_logits"][~supervised].any() and not out["new_rnn_states"][~supervised, STUDENT_RNN:].any()
