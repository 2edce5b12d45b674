"""The teacher bank's execution strategies give exactly each teacher's own forward pass."""

import pytest
import torch
from gymnasium import spaces

from sf_kickstart.checkpoints import load_checkpoint
from sf_kickstart.suites import minigrid
from sf_kickstart.teachers import (
    FrozenTeacher,
    KernelExecutor,
    StackedTeachers,
    TeacherBank,
    TeacherSpec,
    stack_signature,
)
from tests.e2e_utils import make_teacher_dir


@pytest.fixture(scope="module")
def teacher_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bank")
    torch.manual_seed(7)
    same = [make_teacher_dir(str(root / f"same{i}"), rnn_size=32) for i in range(3)]
    other = make_teacher_dir(str(root / "other"), rnn_size=48)
    for d in same + [other]:  # non-trivial observation-normaliser statistics, different per teacher
        import glob

        path = glob.glob(f"{d}/checkpoint_p0/*.pth")[0]
        ckpt = load_checkpoint(path)
        for k, v in ckpt["model"].items():
            if k.endswith("running_mean"):
                ckpt["model"][k] = torch.rand_like(v) - 0.5
            elif k.endswith("running_var"):
                ckpt["model"][k] = torch.rand_like(v) * 2 + 0.1
        torch.save(ckpt, path)
    return same, other


def _bank(teacher_dirs, cpu_kernel=True):
    same, other = teacher_dirs
    tasks = minigrid.task_names("minigrid_suite")
    specs = [
        TeacherSpec(path=same[0], tasks=tasks[0:2]),
        TeacherSpec(path=same[1], tasks=tasks[2:4]),
        TeacherSpec(path=other, tasks=tasks[4:6]),
        TeacherSpec(path=same[2], tasks=tasks[6:8]),
    ]  # task 8 has no teacher
    return TeacherBank(specs, tasks, minigrid.observation_space(), spaces.Discrete(7), cpu_kernel=cpu_kernel), tasks


def test_traced_teacher_equals_sample_factory_forward(teacher_dirs):
    t = FrozenTeacher(TeacherSpec(path=teacher_dirs[0][0]), minigrid.observation_space(), spaces.Discrete(7))
    assert t.traced is not None
    obs = {"obs": torch.randint(0, 2, (5, 984), dtype=torch.uint8), "task_id": torch.eye(9)[:5]}
    h = torch.rand(5, t.rnn_size)
    from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs

    with torch.no_grad():
        ref = t.model(prepare_and_normalize_obs(t.model, {"obs": obs["obs"], "task_id": obs["task_id"]}), h)
        logits, new_h = t.forward(obs, h)
    assert torch.allclose(logits, ref["action_logits"], atol=1e-5)
    assert torch.allclose(new_h, ref["new_rnn_states"], atol=1e-5)


def test_same_architecture_teachers_are_stacked(teacher_dirs):
    bank, _ = _bank(teacher_dirs)
    assert [ex.members for ex in bank.groups] == [[0, 1, 3], [2]]  # a different rnn size runs in its own group
    assert all(isinstance(ex, KernelExecutor) for ex in bank.groups)  # stacked, on the CPU kernel
    assert [ex.stack.k for ex in bank.groups] == [3, 1]
    assert all(set(ex.stack.folded) == {"obs"} for ex in bank.groups)  # the binary key only
    assert stack_signature(bank.teachers[0]) != stack_signature(bank.teachers[2])


@pytest.mark.parametrize("host", [True, False])  # CPU kernel; the torch path other devices take
@pytest.mark.parametrize("n", [1, 9, 23])
def test_bank_routes_every_row_to_its_tasks_teacher(teacher_dirs, host, n):
    bank, tasks = _bank(teacher_dirs, cpu_kernel=host)
    if not host:  # the path other devices take, run on CPU: traced torch, rows grouped per teacher
        assert all(isinstance(ex, StackedTeachers) and ex.traced is not None for ex in bank.groups)
    gen = torch.Generator().manual_seed(n)
    task_ids = torch.randint(0, 9, (n,), generator=gen)
    task_id = torch.eye(9)[task_ids]
    task_id[1::3] *= 0.5  # rows that are not exactly one-hot take the general path, the others a precomputed one
    obs = {"obs": torch.randint(0, 2, (n, 984), dtype=torch.uint8, generator=gen), "task_id": task_id}
    h = torch.rand(n, bank.rnn_size, generator=gen)
    logits, tidx, new_h = bank.forward(obs, h, 7)
    expected = [0, 0, 1, 1, 2, 2, 3, 3, -1]
    for r in range(n):
        owner = expected[int(task_ids[r])]
        assert int(tidx[r]) == owner
        if owner < 0:
            assert (logits[r] == 0).all() and (new_h[r] == 0).all()
            continue
        t = bank.teachers[owner]
        ref_l, ref_h = t.forward({k: v[r : r + 1] for k, v in obs.items()}, h[r : r + 1, : t.rnn_size])
        assert torch.allclose(logits[r : r + 1], ref_l, atol=1e-5)
        assert torch.allclose(new_h[r : r + 1, : t.rnn_size], ref_h, atol=1e-5)


@pytest.mark.parametrize("kernel", [True, False])
def test_stack_folds_mean_subtraction_scaling_and_deeper_mlps(tmp_path, kernel):
    """SF's obs mean subtraction and scaling (folded into the binary key's table), two-layer encoders with ReLU,
    a decoder MLP and no recurrent core: the stack still equals each teacher's own forward."""
    torch.manual_seed(3)
    extra = ["--obs_subtract_mean=0.25", "--obs_scale=2.0", "--encoder_mlp_layers", "24", "16",
             "--nonlinearity=relu", "--decoder_mlp_layers", "8", "--use_rnn=False"]
    dirs = [make_teacher_dir(str(tmp_path / f"t{i}"), extra=extra) for i in range(2)]
    tasks = minigrid.task_names("minigrid_suite")
    specs = [TeacherSpec(path=dirs[0], tasks=tasks[:5]), TeacherSpec(path=dirs[1], tasks=tasks[5:])]
    bank = TeacherBank(specs, tasks, minigrid.observation_space(), spaces.Discrete(7), cpu_kernel=kernel)
    assert isinstance(bank.whole, KernelExecutor if kernel else StackedTeachers)  # checked against its teachers
    assert bank.rnn_size == 1  # SF's placeholder state
    stacked = bank.whole.stack if kernel else bank.whole
    assert stacked.sub_mean == 0.25 and stacked.scale == 2.0 and "obs" in stacked.folded
    n = 13
    gen = torch.Generator().manual_seed(5)
    task_ids = torch.randint(0, 9, (n,), generator=gen)
    obs = {"obs": torch.randint(0, 2, (n, 984), dtype=torch.uint8, generator=gen), "task_id": torch.eye(9)[task_ids]}
    h = torch.rand(n, 1, generator=gen)
    logits, tidx, new_h = bank.forward(obs, h, 7)
    for r in range(n):
        owner = int(task_ids[r] >= 5)
        assert int(tidx[r]) == owner
        ref_l, ref_h = bank.teachers[owner].forward({k: v[r : r + 1] for k, v in obs.items()}, h[r : r + 1])
        assert torch.allclose(logits[r : r + 1], ref_l, atol=1e-5)
        assert torch.allclose(new_h[r : r + 1], ref_h, atol=1e-6)


def test_teacher_on_a_plain_box_observation_without_task_id(tmp_path):
    """Envs outside the suites (a flat Box, no task id): one teacher, every row task 0, still its own forward."""
    obs_space, act_space = spaces.Dict({"obs": spaces.Box(-1.0, 1.0, (4,))}), spaces.Discrete(2)  # as SF's env_info
    d = make_teacher_dir(str(tmp_path / "t"), env="CartPole-v1", extra=["--normalize_input=True"], obs_space=obs_space,
                         action_space=act_space)
    bank = TeacherBank([TeacherSpec(path=d, tasks=["CartPole-v1"])], ["CartPole-v1"], obs_space, act_space)
    assert bank.routing_kernel is not None
    gen = torch.Generator().manual_seed(0)
    obs = {"obs": torch.rand(6, 4, generator=gen) * 2 - 1}
    h = torch.rand(6, bank.rnn_size, generator=gen)
    logits, tidx, new_h = bank.forward(obs, h, 2)
    ref_l, ref_h = bank.teachers[0].forward(obs, h)
    assert (tidx == 0).all()
    assert torch.allclose(logits, ref_l, atol=1e-5) and torch.allclose(new_h, ref_h, atol=1e-5)


def test_a_kernel_that_disagrees_with_the_teachers_is_not_used(teacher_dirs, monkeypatch):
    """The fast path is checked against each teacher's own forward: a wrong kernel falls back to the torch path."""
    from sf_kickstart.teachers import kernel as stack_kernel

    real = stack_kernel.StackKernel.__call__

    def wrong(self, *args, **kwargs):
        logits, new_h = real(self, *args, **kwargs)
        return logits + 0.01, new_h

    monkeypatch.setattr(stack_kernel.StackKernel, "__call__", wrong)
    bank, _ = _bank(teacher_dirs)
    assert all(isinstance(ex, StackedTeachers) and ex.traced is not None for ex in bank.groups)
