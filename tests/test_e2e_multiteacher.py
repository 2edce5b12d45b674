"""End to end: per-task teachers of different rnn sizes on the MiniGrid suite, routed by the task id.

Teacher A (GRU 32) supervises DoorKey-5x5 with ρ=0.5; teacher B (GRU 48) supervises Empty-Random-6x6 and MemoryS7
with ρ=2; every other task has no teacher. With 2 workers x 4 envs the envs play tasks 0..7.
"""

from __future__ import annotations

import glob
import os

import pytest
import torch

from tests.e2e_utils import FAST, describe, latest_checkpoint, make_teacher_dir, run_train, scalars

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    torch.manual_seed(123)
    a = make_teacher_dir(str(root / "teacher_a"), rnn_size=32)
    b = make_teacher_dir(str(root / "teacher_b"), env="minigrid_Empty-Random-6x6", rnn_size=48)
    map_path = root / "teachers.yaml"
    map_path.write_text(
        f"DoorKey-5x5: {{path: {a}, rho: 0.5}}\n"
        f"Empty-Random-6x6: {{path: {b}, rho: 2.0}}\n"
        f"MemoryS7: {b}\n"
    )
    args = [
        "--env=minigrid_suite",
        "--experiment=student_multi",
        f"--train_dir={root}",
        f"--teachers={map_path}",
        "--kickstart_schedule=constant",
        "--kickstart_lambda=0.8",
        "--kickstart_debug_dump=4",  # 4 batches: 2 could all come from one worker, whose envs miss a teacher
        "--encoder_mlp_layers",
        "64",
        "--rnn_size=64",
        "--use_rnn=True",
        *FAST,
    ]
    proc = run_train(args + ["--train_for_env_steps=2000"])
    assert proc.returncode == 0, describe(proc)
    return dict(root=str(root), a=a, b=b, map=map_path, args=args, exp=str(root / "student_multi"))


def _teacher(path):
    from gymnasium import spaces

    from sf_kickstart.suites import minigrid
    from sf_kickstart.teachers import FrozenTeacher, TeacherSpec

    return FrozenTeacher(TeacherSpec(path=path), minigrid.observation_space(), spaces.Discrete(7))


def test_every_stored_logit_came_from_its_tasks_teacher(setup):
    from sf_kickstart.kickstart.loss import kickstart_loss
    from sf_kickstart.suites.minigrid import task_names

    tasks = task_names("minigrid_suite")
    owner = {"DoorKey-5x5": 0, "Empty-Random-6x6": 1, "MemoryS7": 1}  # teacher order = first appearance in map
    teachers = [_teacher(setup["a"]), _teacher(setup["b"])]
    lam = [0.8 * 0.5, 0.8 * 2.0]
    dumps = sorted(glob.glob(os.path.join(setup["exp"], "kickstart_debug", "p0", "batch_*.pt")))
    assert len(dumps) == 4
    seen = set()
    for path in dumps:
        d = torch.load(path, weights_only=False)
        assert d["teacher_names"] == ["teacher_a", "teacher_b"]
        task_ids = d["obs"]["task_id"].argmax(dim=-1)
        assert d["teacher_rnn"].shape[1] == 48  # one block, width of the largest teacher state
        for tid in task_ids.unique().tolist():
            rows = task_ids == tid
            expected = owner.get(tasks[tid], -1)
            assert (d["teacher_idx"][rows] == expected).all(), tasks[tid]
            if expected < 0:
                assert (d["teacher_logits"][rows] == 0).all() and (d["weights"][rows] == 0).all()
                continue
            seen.add(expected)
            t = teachers[expected]
            sub_obs = {k: v[rows] for k, v in d["obs"].items()}
            logits, _ = t.forward(sub_obs, d["teacher_rnn"][rows, : t.rnn_size])
            assert torch.allclose(logits, d["teacher_logits"][rows], atol=1e-5), tasks[tid]
            other = teachers[1 - expected]
            other_logits, _ = other.forward(sub_obs, d["teacher_rnn"][rows, : other.rnn_size])
            assert not torch.allclose(other_logits, d["teacher_logits"][rows], atol=1e-4)  # the test can tell them apart
            assert torch.allclose(d["weights"][rows], torch.full((int(rows.sum()),), lam[expected]))

        # tasks without a teacher contribute nothing: the loss equals the one computed on supervised rows alone
        has = d["teacher_idx"] >= 0
        full = kickstart_loss(d["student_logits"], d["teacher_logits"], d["weights"], d["valids"], [7], has)
        assert full.loss.item() == pytest.approx(d["loss"], rel=1e-5)
        masked_valids = d["valids"] & has
        only_supervised = kickstart_loss(
            d["student_logits"], d["teacher_logits"], d["weights"], masked_valids, [7], has
        ).loss.item() * masked_valids.sum().item() / d["valids"].sum().item()
        assert only_supervised == pytest.approx(d["loss"], rel=1e-5)
        assert (~has).any(), "some tasks have no teacher"
    assert seen == {0, 1}


def test_per_teacher_summaries(setup):
    assert [v for _, v in scalars(setup["exp"], "kickstart/lambda_teacher_a")][-1] == pytest.approx(0.4)
    assert [v for _, v in scalars(setup["exp"], "kickstart/lambda_teacher_b")][-1] == pytest.approx(1.6)
    assert [v for _, v in scalars(setup["exp"], "kickstart/task_lambda/DoorKey-8x8")][-1] == 0.0
    assert [v for _, v in scalars(setup["exp"], "kickstart/task_lambda/MemoryS7")][-1] == pytest.approx(1.6)
    # SF records summaries at the first training step, then every few seconds (this run may be over by then): every
    # teacher with supervised rows in the first batch (the first debug dump) has its KL and agreement there
    first = torch.load(sorted(glob.glob(os.path.join(setup["exp"], "kickstart_debug", "p0", "batch_*.pt")))[0],
                       weights_only=False)
    present = {int(i) for i in first["teacher_idx"][first["valids"]].unique().tolist() if i >= 0}
    assert present, "the first batch has supervised rows"
    for i in present:
        name = ["teacher_a", "teacher_b"][i]
        for tag in [f"kickstart/kl_{name}", f"kickstart/action_agreement_{name}", f"kickstart/loss_{name}"]:
            assert scalars(setup["exp"], tag), tag


def test_alpha_and_rho_survive_resume(setup):
    ck = latest_checkpoint(setup["exp"])
    assert ck["kickstart"]["rho"] == {"teacher_a": 0.5, "teacher_b": 2.0}
    assert ck["kickstart"]["alpha_scale"] == pytest.approx(0.8)
    # resume with a map and λ that say otherwise: the checkpointed state (what PBT may have evolved) is restored
    setup["map"].write_text(
        f"DoorKey-5x5: {{path: {setup['a']}, rho: 3.0}}\nEmpty-Random-6x6: {{path: {setup['b']}, rho: 3.0}}\n"
        f"MemoryS7: {setup['b']}\n"
    )
    args = [a for a in setup["args"] if not a.startswith("--kickstart_debug_dump")]
    proc = run_train(args + ["--train_for_env_steps=4000"])
    assert proc.returncode == 0, describe(proc)
    ck2 = latest_checkpoint(setup["exp"])
    assert ck2["env_steps"] > ck["env_steps"]
    assert ck2["kickstart"]["rho"] == {"teacher_a": 0.5, "teacher_b": 2.0}
    after = [v for step, v in scalars(setup["exp"], "kickstart/rho_teacher_a") if step > ck["env_steps"]]
    assert after and all(v == pytest.approx(0.5) for v in after)
