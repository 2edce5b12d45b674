"""Faults injected into real training runs (`python -m sf_kickstart.train` subprocesses, tiny, CPU): no work is lost,
nothing hangs, and every failure is a clear non-zero exit.

  * kill -9 of the main process: its workers exit within seconds; a resume continues frames, λ and ρ from the last
    checkpoint;
  * kill -9 of a rollout worker, of the inference worker: the run stops with a non-zero exit and a message naming the
    dead process, in bounded time;
  * SIGINT, SIGTERM: a graceful stop that writes a fresh checkpoint with more frames, exit 130 / 143;
  * torch.save failing (a full disk, simulated by tests/fault_inject/sitecustomize.py): the previous checkpoint stays
    intact and loadable, no partial file is left where a resume would pick it up, and the run stops with a clear error;
    the same when the final checkpoint, written on the way out of a SIGTERM, fails.
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
import torch

from sf_kickstart.checkpoints import load_checkpoint
from sf_kickstart.experiments import checkpoint_paths
from tests.e2e_utils import (
    FAST,
    REPO,
    describe,
    logged_pid,
    make_teacher_dir,
    read_log,
    run_train,
    scalars,
    start_train,
    wait_until,
)

pytestmark = pytest.mark.e2e

SMALL = ["--encoder_mlp_layers", "32", "--use_rnn=True", "--rnn_type=gru", "--rnn_size=32", "--normalize_input=False"]
FOREVER = "--train_for_env_steps=100000000"
STARTUP_S = 180  # generous: the machine running the tests may be shared


def run_args(train_dir, experiment: str, *extra) -> list:
    return ["--env=minigrid_suite", f"--experiment={experiment}", f"--train_dir={train_dir}", *SMALL, *FAST,
            "--num_workers=1", *extra]


def stop(proc) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def checkpoint_with_frames(exp_dir: str, min_count: int = 1):
    """The newest loadable checkpoint once at least min_count have been written after training started."""
    files = [f for f in checkpoint_paths(exp_dir) if not f.endswith("_0.pth")]
    if len(files) < min_count:
        return None
    try:
        return files[-1], load_checkpoint(files[-1])
    except Exception:  # noqa: BLE001 - being written right now
        return None


def wait_for_exit(proc, timeout: float, log_path: str = None) -> int:
    try:
        return proc.wait(timeout)
    except Exception:  # noqa: BLE001
        stop(proc)
        tail = read_log(log_path)[-4000:] if log_path else ""
        raise AssertionError(f"the run did not exit within {timeout:.0f} s\n{tail}")


# ------------------------------------------------------------------------------------------------ kill -9 main
@pytest.fixture(scope="module")
def teacher_map(tmp_path_factory):
    root = tmp_path_factory.mktemp("fault_teachers")
    a = make_teacher_dir(str(root / "teacher_a"), rnn_size=16)
    b = make_teacher_dir(str(root / "teacher_b"), rnn_size=16)
    path = root / "teachers.yaml"
    path.write_text(f"DoorKey-5x5: {{path: {a}, rho: 0.5}}\nEmpty-Random-6x6: {{path: {b}, rho: 1.0}}\n")
    return str(path)


def test_kill9_main_process_workers_exit_and_resume_continues_frames_lambda_and_rho(tmp_path, teacher_map):
    args = run_args(tmp_path, "killed", f"--teachers={teacher_map}", "--kickstart_schedule=linear",
                    "--kickstart_lambda=1.0", "--kickstart_end_frames=200000", "--save_every_sec=2")
    exp = str(tmp_path / "killed")
    proc = start_train(args + [FOREVER], str(tmp_path / "first.log"))
    try:
        wait_until(lambda: checkpoint_with_frames(exp, 2), STARTUP_S, proc, "two checkpoints of a training run")
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) >= 3, workers  # learner, inference worker, rollout worker (+ resource tracker)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f"workers still running 15 s after the main process was killed: {alive}"
    finally:
        stop(proc)

    last_path, last = checkpoint_with_frames(exp)
    teachers = sorted(last["kickstart"]["rho"])
    assert last["kickstart"]["rho"] == {teachers[0]: 0.5, teachers[1]: 1.0}
    # stand-in for a ρ that PBT mutated during the run: the resume must continue from the checkpoint's ρ, not the map's
    last["kickstart"]["rho"][teachers[0]] = 0.37
    torch.save(last, last_path)
    # as if the kill had hit the learner while it wrote the next checkpoint (SF writes checkpoint_temp, then renames)
    with open(os.path.join(exp, "checkpoint_p0", "checkpoint_temp"), "wb") as f:
        f.write(b"PK\x03\x04 partial")

    resumed = run_train(args + [f"--train_for_env_steps={last['env_steps'] + 1500}"], timeout=STARTUP_S + 120)
    assert resumed.returncode == 0, describe(resumed)
    out = resumed.stdout + resumed.stderr
    assert f"self.env_steps={last['env_steps']}" in out, "the resume did not load the last checkpoint\n" + describe(resumed)
    _, final = checkpoint_with_frames(exp)
    assert final["env_steps"] > last["env_steps"] and final["train_step"] > last["train_step"]
    assert final["kickstart"]["rho"] == {teachers[0]: 0.37, teachers[1]: 1.0}
    assert final["kickstart"]["alpha"] == pytest.approx(1.0 - final["env_steps"] / 200000, abs=1e-6)


# ------------------------------------------------------------------------------------------------ kill -9 a worker
@pytest.mark.parametrize("component, process_name", [("ROLLOUT worker 0", "rollout_proc0"),
                                                     ("InferenceWorker_p0-w0", "inference_proc0-0")])
def test_kill9_worker_stops_the_run_with_a_message_naming_it(tmp_path, component, process_name):
    log_path = str(tmp_path / "run.log")
    proc = start_train(run_args(tmp_path, "worker_killed", FOREVER), log_path)
    try:
        wait_until(lambda: "Total num frames: 0." not in read_log(log_path).split("Fps is")[-1]
                   and "Fps is" in read_log(log_path), STARTUP_S, proc, "training to start")
        pid = logged_pid(log_path, component)
        assert pid is not None, read_log(log_path)[-3000:]
        os.kill(pid, signal.SIGKILL)
        rc = wait_for_exit(proc, 120, log_path)  # the runner's own bound: 45 s after a death (DeathWatch), plus detection
    finally:
        stop(proc)
    text = read_log(log_path)
    assert rc != 0, text[-3000:]
    assert f"Process {process_name} died" in text or f"process {process_name} died" in text, text[-3000:]


# ------------------------------------------------------------------------------------------------ SIGINT, SIGTERM
@pytest.mark.parametrize("sig, rc_expected", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_stop_signal_stops_gracefully_with_a_fresh_checkpoint(tmp_path, sig, rc_expected):
    exp = str(tmp_path / "interrupted")
    log_path = str(tmp_path / "run.log")
    proc = start_train(run_args(tmp_path, "interrupted", FOREVER, "--save_every_sec=3"), log_path)
    try:
        periodic_path, periodic = wait_until(lambda: checkpoint_with_frames(exp), STARTUP_S, proc, "a periodic checkpoint")
        wait_until(lambda: _frames_logged(log_path) > periodic["env_steps"], 60, proc, "training past the checkpoint")
        proc.send_signal(sig)
        interrupted_at = time.time()
        rc = wait_for_exit(proc, 60, log_path)
    finally:
        stop(proc)
    text = read_log(log_path)
    assert "Traceback" not in text, text[-3000:]
    assert f"{sig.name}: writing a final checkpoint and stopping" in text, text[-3000:]
    newest = checkpoint_paths(exp)[-1]
    assert newest != periodic_path and os.path.getmtime(newest) >= interrupted_at, (
        f"no checkpoint written on {sig.name} (rc={rc}); newest is {newest}\n{text[-3000:]}")
    final = load_checkpoint(newest)
    assert final["env_steps"] > periodic["env_steps"]
    assert rc == rc_expected == 128 + sig, f"rc={rc}: a signal stop exits 128 + signum, not bad input's 2"


def _frames_logged(log_path: str) -> int:
    import re

    frames = re.findall(r"Total num frames: (\d+)", read_log(log_path))
    return int(frames[-1]) if frames else 0


# ------------------------------------------------------------------------------------------------ disk full
DISK_FULL = "SF_KICKSTART_TEST_DISK_FULL_AFTER"  # each process: the first N torch.save calls work, later ones fail


def disk_full_env(after: int) -> dict:
    return {"PYTHONPATH": os.path.join(REPO, "tests", "fault_inject") + os.pathsep + REPO, DISK_FULL: str(after)}


def assert_failed_save_is_clear(rc: int, text: str, exp: str) -> list:
    assert rc not in (0, None) and rc > 0, f"rc={rc}\n{text[-3000:]}"
    assert "No space left on device" in text and "writing a checkpoint" in text, text[-3000:]
    files = os.listdir(os.path.join(exp, "checkpoint_p0"))
    assert not [f for f in files if not f.endswith(".pth")], f"partial file left behind: {files}"
    return files


def test_failing_checkpoint_save_keeps_the_previous_checkpoint_and_is_a_clear_error(tmp_path):
    exp = str(tmp_path / "disk_full")
    log_path = str(tmp_path / "run.log")
    proc = start_train(run_args(tmp_path, "disk_full", FOREVER, "--save_every_sec=2"), log_path, disk_full_env(1))
    try:
        rc = wait_for_exit(proc, STARTUP_S + 60, log_path)
    finally:
        stop(proc)
    files = assert_failed_save_is_clear(rc, read_log(log_path), exp)
    assert len(files) == 1, files
    assert f"the last one written, {files[0]}, is intact" in read_log(log_path)
    load_checkpoint(os.path.join(exp, "checkpoint_p0", files[0]))


def test_sigterm_whose_final_checkpoint_cannot_be_written_exits_nonzero_without_hanging(tmp_path):
    exp = str(tmp_path / "disk_full_at_exit")
    log_path = str(tmp_path / "run.log")
    args = run_args(tmp_path, "disk_full_at_exit", FOREVER, "--save_every_sec=100000")
    proc = start_train(args, log_path, disk_full_env(0))
    try:
        wait_until(lambda: _frames_logged(log_path) > 0, STARTUP_S, proc, "training to start")
        proc.send_signal(signal.SIGTERM)
        rc = wait_for_exit(proc, 90, log_path)
    finally:
        stop(proc)
    text = read_log(log_path)
    assert "SIGTERM: writing a final checkpoint" in text, text[-3000:]
    assert_failed_save_is_clear(rc, text, exp)


# ------------------------------------------------------------------------------------------------ non-finite loss
NAN_VALUE_LOSS = "SF_KICKSTART_TEST_NAN_VALUE_LOSS"  # minibatches (1-based ranges) whose value loss is NaN


def test_nonfinite_minibatches_are_skipped_counted_and_k_in_a_row_stop_the_run(tmp_path):
    """Minibatches 4-5 have a NaN value loss: skipped (no optimizer step), counted in train/nonfinite_skipped, and the
    run goes on. From minibatch 30 on every one is NaN: the 3rd skip in a row (--max_nonfinite_skips=3) stops the run
    with a non-zero exit and an error naming the last good checkpoint, which is finite like every checkpoint written."""
    import re

    from sf_kickstart import tags
    from sf_kickstart.sf.fixes.nonfinite import first_nonfinite

    exp = str(tmp_path / "nan_loss")
    log_path = str(tmp_path / "run.log")
    env = {"PYTHONPATH": os.path.join(REPO, "tests", "fault_inject") + os.pathsep + REPO, NAN_VALUE_LOSS: "4-5,30-"}
    args = run_args(tmp_path, "nan_loss", FOREVER, "--max_nonfinite_skips=3", "--save_every_sec=2")
    proc = start_train(args, log_path, env)
    try:
        rc = wait_for_exit(proc, STARTUP_S + 240, log_path)
    finally:
        stop(proc)
    text = read_log(log_path)
    assert rc not in (0, None), f"rc={rc}\n{text[-3000:]}"
    skips = re.findall(r"Skipped a minibatch at train step \d+: non-finite value loss term; no optimizer step "
                       r"\((\d+) skipped in all, (\d+) in a row\)", text)
    assert [tuple(map(int, s)) for s in skips] == [(1, 1), (2, 2), (3, 1), (4, 2)], text[-3000:]
    m = re.search(r"3 consecutive minibatches skipped \(last: non-finite value loss term\): stopping the run "
                  r"\(--max_nonfinite_skips=3\)\. The last good checkpoint is (\S+\.pth)", text)
    assert m, text[-3000:]
    assert os.path.isfile(m.group(1)) and m.group(1) == checkpoint_paths(exp)[-1]
    for path in checkpoint_paths(exp):
        ckpt = load_checkpoint(path)
        assert first_nonfinite(dict(model=ckpt["model"], optimizer=ckpt["optimizer"])) is None, path
    counted = [v for _, v in scalars(exp, tags.NONFINITE_SKIPPED)]
    assert counted and max(counted) >= 2 and set(counted) <= {0, 1, 2, 3, 4}, counted
