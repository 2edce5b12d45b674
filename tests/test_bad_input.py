"""Bad input gets one clear error, before any worker starts; a worker that cannot make its env fails the run."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from tests.e2e_utils import FAST, describe, make_teacher_dir, run_train


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


def test_teacher_path_missing(tmp_path):
    proc = run_train(student_args(tmp_path, "--teacher=/nonexistent/teacher_dir"))
    assert_clear_error(proc, "does not exist", "/nonexistent/teacher_dir")


def test_teacher_without_checkpoint(tmp_path, teacher):
    t = tmp_path / "no_ckpt"
    t.mkdir()
    shutil.copy(os.path.join(teacher, "config.json"), t / "config.json")
    proc = run_train(student_args(tmp_path, f"--teacher={t}"))
    assert_clear_error(proc, "has no checkpoint")


def test_teacher_with_corrupt_checkpoint(tmp_path, teacher):
    t = tmp_path / "corrupt"
    shutil.copytree(teacher, t)
    (t / "checkpoint_p0" / "checkpoint_000000001_100.pth").write_bytes(b"definitely not a torch file")
    proc = run_train(student_args(tmp_path, f"--teacher={t}"))
    assert_clear_error(proc, "could not be loaded")


def test_teacher_with_mismatched_spaces(tmp_path, teacher):
    t = tmp_path / "cartpole_teacher"
    shutil.copytree(teacher, t)
    cfg = json.loads((t / "config.json").read_text())
    cfg["env"] = "CartPole-v1"
    (t / "config.json").write_text(json.dumps(cfg))
    proc = run_train(student_args(tmp_path, f"--teacher={t}"))
    assert_clear_error(proc, "observation space does not match")


def test_teacher_checkpoint_that_does_not_fit_its_config(tmp_path, teacher):
    t = tmp_path / "wrong_arch"
    shutil.copytree(teacher, t)
    cfg = json.loads((t / "config.json").read_text())
    cfg["rnn_size"] = 48  # checkpoint was made with 32
    (t / "config.json").write_text(json.dumps(cfg))
    proc = run_train(student_args(tmp_path, f"--teacher={t}"))
    assert_clear_error(proc, "does not fit the architecture")


def test_unknown_suite(tmp_path):
    proc = run_train(student_args(tmp_path) + ["--env=nosuchsuite_level1"])
    assert_clear_error(proc, "Unknown env or suite", "nosuchsuite_level1")


def test_unknown_task(tmp_path):
    proc = run_train(student_args(tmp_path) + ["--env=minigrid_DoorKey-99x99"])
    assert_clear_error(proc, "minigrid_DoorKey-99x99")


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


def test_teacher_map_with_unknown_task(tmp_path, teacher):
    m = tmp_path / "map.yaml"
    m.write_text(f"DoorKey-5x5: {teacher}\nNotATask: {teacher}\n")
    proc = run_train(student_args(tmp_path, f"--teachers={m}"))
    assert_clear_error(proc, "NotATask", "not in this suite")


def test_teacher_and_teachers_together(tmp_path, teacher):
    m = tmp_path / "map.yaml"
    m.write_text(f"DoorKey-5x5: {teacher}\n")
    proc = run_train(student_args(tmp_path, f"--teachers={m}", f"--teacher={teacher}"))
    assert_clear_error(proc, "not both")


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
