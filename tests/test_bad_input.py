"""Bad input gets one clear error, before any worker starts; a worker that cannot make its env fails the run."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from tests.e2e_utils import FAST, describe, make_teacher_dir, run_train

pytestmark = pytest.mark.e2e  # every test runs `python -m sf_kickstart.train`


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return make_teacher_dir(str(tmp_path_factory.mktemp("teachers") / "good_teacher"))


def student_args(tmp_path, *extra):
    return [
        "--env=minigrid_suite",
        "--experiment=student",
        f"--train_dir={tmp_path}",
        "--encoder_mlp_layers",
        "32",
        "--train_for_env_steps=1000",
        *FAST,
        *extra,
    ]


def assert_clear_error(proc, *fragments):
    assert proc.returncode == 2, describe(proc)
    err = proc.stderr
    assert "sf_kickstart: error:" in err, describe(proc)
    for frag in fragments:
        assert frag in err, f"expected {frag!r} in the error\n{describe(proc)}"
    # nothing was started: no worker process, no traceback
    assert "Starting process" not in proc.stdout + err
    assert "Traceback" not in err


def _copy(tmp_path, teacher, name):
    t = tmp_path / name
    shutil.copytree(teacher, t)
    return t


def _edit_config(t, **changes):
    cfg = json.loads((t / "config.json").read_text())
    cfg.update(changes)
    (t / "config.json").write_text(json.dumps(cfg))
    return t


def _no_checkpoint(tmp_path, teacher):
    t = tmp_path / "no_ckpt"
    t.mkdir()
    shutil.copy(os.path.join(teacher, "config.json"), t / "config.json")
    return t


def _corrupt_checkpoint(tmp_path, teacher):
    t = _copy(tmp_path, teacher, "corrupt")
    (t / "checkpoint_p0" / "checkpoint_000000001_100.pth").write_bytes(b"definitely not a torch file")
    return t


def _teachers_map(tmp_path, teacher, text):
    m = tmp_path / "map.yaml"
    m.write_text(text.format(teacher=teacher))
    return m


BAD_TEACHERS = {  # name: (flags given a tmp_path and a good teacher dir, fragments of the one error)
    "path_missing": (lambda tmp, t: ["--teacher=/nonexistent/teacher_dir"], ["does not exist", "/nonexistent/teacher_dir"]),
    "without_checkpoint": (lambda tmp, t: [f"--teacher={_no_checkpoint(tmp, t)}"], ["has no checkpoint"]),
    "corrupt_checkpoint": (lambda tmp, t: [f"--teacher={_corrupt_checkpoint(tmp, t)}"], ["could not be loaded"]),
    "mismatched_spaces": (  # a teacher trained on another env
        lambda tmp, t: [f"--teacher={_edit_config(_copy(tmp, t, 'cartpole_teacher'), env='CartPole-v1')}"],
        ["observation space does not match"],
    ),
    "checkpoint_that_does_not_fit_its_config": (  # checkpoint was made with rnn_size 32
        lambda tmp, t: [f"--teacher={_edit_config(_copy(tmp, t, 'wrong_arch'), rnn_size=48)}"],
        ["does not fit the architecture"],
    ),
    "map_with_unknown_task": (
        lambda tmp, t: [f"--teachers={_teachers_map(tmp, t, 'DoorKey-5x5: {teacher}' + chr(10) + 'NotATask: {teacher}' + chr(10))}"],
        ["NotATask", "not in this suite"],
    ),
    "teacher_and_teachers_together": (
        lambda tmp, t: [f"--teachers={_teachers_map(tmp, t, 'DoorKey-5x5: {teacher}' + chr(10))}", f"--teacher={t}"],
        ["not both"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_TEACHERS))
def test_bad_teacher(tmp_path, teacher, case):
    flags, fragments = BAD_TEACHERS[case]
    proc = run_train(student_args(tmp_path, *flags(tmp_path, teacher)))
    assert_clear_error(proc, *fragments)


@pytest.mark.parametrize(
    "env, fragments",
    [
        ("nosuchsuite_level1", ["Unknown env or suite", "nosuchsuite_level1"]),  # unknown suite
        ("minigrid_DoorKey-99x99", ["minigrid_DoorKey-99x99"]),  # unknown task
    ],
)
def test_unknown_env(tmp_path, env, fragments):
    proc = run_train(student_args(tmp_path) + [f"--env={env}"])
    assert_clear_error(proc, *fragments)


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--kickstart_schedule=linear"], "kickstart_end_frames"),
        (["--kickstart_schedule=cosine"], "expected one of"),
        (["--kickstart_lambda=-1"], ">= 0"),
        (["--kickstart_schedule=exponential", "--kickstart_decay=2"], "decay"),
    ],
)
def test_impossible_schedule(tmp_path, teacher, flags, fragment):
    proc = run_train(student_args(tmp_path, f"--teacher={teacher}", *flags))
    assert_clear_error(proc, fragment)


def test_corrupt_student_checkpoint_is_never_replaced_by_random_weights(tmp_path):
    ckpt_dir = tmp_path / "student" / "checkpoint_p0"
    ckpt_dir.mkdir(parents=True)
    (ckpt_dir / "checkpoint_000000010_5000.pth").write_bytes(b"\x00garbage")
    proc = run_train(student_args(tmp_path))
    assert_clear_error(proc, "could not be loaded", "Refusing to train from random weights")


def test_env_that_cannot_be_created_is_an_error_not_a_hang(tmp_path):
    proc = run_train(student_args(tmp_path) + ["--env=tests.failing_env:SfKickstartFailEverywhere-v0"], timeout=120)
    assert proc.returncode == 2, describe(proc)
    assert "Could not create env" in proc.stderr


def test_env_failing_only_in_rollout_workers_exits_nonzero(tmp_path):
    start = time.time()
    proc = run_train(
        student_args(tmp_path) + ["--env=tests.failing_env:SfKickstartFailInWorker-v0", "--use_rnn=False"], timeout=180
    )
    assert proc.returncode not in (0, None), describe(proc)
    assert "cannot be created in a rollout worker" in proc.stdout + proc.stderr
    assert time.time() - start < 120


def test_teacher_with_a_nan_weight_is_one_clear_error_before_workers_start(tmp_path, teacher):
    """A teacher whose logits are non-finite on observations from the student's env would make the kickstart loss,
    the student's weights and its checkpoints NaN: it is rejected up front, naming the bad tensor."""
    import torch

    from sf_kickstart.checkpoints import load_checkpoint
    from sf_kickstart.experiments import latest_checkpoint

    t = _copy(tmp_path, teacher, "nan_teacher")
    path = latest_checkpoint(str(t))
    ckpt = load_checkpoint(path)
    name = next(k for k in ckpt["model"] if k.endswith("weight") and "encoder" in k)
    ckpt["model"][name].view(-1)[3] = float("nan")
    torch.save(ckpt, path)
    proc = run_train(student_args(tmp_path, f"--teacher={t}"))
    assert_clear_error(proc, "'nan_teacher'", "non-finite logits", repr(name))
