"""benchmarks.teacher_task_remap: the agent reads another task's one-hot in place of the env's, and nothing else."""

import types

import numpy as np
import torch

from benchmarks.teacher_task_remap import told
from sf_kickstart.suites.minigrid import NUM_TASKS, TASK_NAMES, task_one_hot


def test_told_replaces_every_rows_task_id_and_keeps_the_grid():
    own = torch.from_numpy(np.stack([task_one_hot(3), task_one_hot(4)]))
    grid = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    agent = types.SimpleNamespace(view=lambda obs: dict(obs))
    renamed = told(agent, "DoorKey-5x5")
    out = renamed.view({"obs": grid, "task_id": own})
    want = task_one_hot(TASK_NAMES.index("DoorKey-5x5"))
    assert out["task_id"].shape == (2, NUM_TASKS)
    assert np.array_equal(out["task_id"].numpy(), np.stack([want, want]))
    assert torch.equal(out["obs"], grid)
    assert torch.equal(own[0], torch.from_numpy(task_one_hot(3)))  # the env's own observation is not modified
    assert torch.equal(agent.view({"task_id": own})["task_id"], own)  # nor the agent told
