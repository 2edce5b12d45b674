"""`python -m sf_kickstart.enjoy --save_video`: stops once the video has its --video_frames and prints its path; the
video of a shipped (zoo) teacher goes under --train_dir, never into the package; SIGTERM and SIGINT stop it and the
frames recorded so far are written (also when rendering initialised pygame/SDL, whose handlers swallow them).
MiniGrid renders rgb_array frames without a display."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from sf_kickstart.processes import python_env
from sf_kickstart.sources import ZOO_DIR
from tests.e2e_utils import REPO

pytestmark = pytest.mark.e2e

ZOO = "minigrid_suite_small"
ENJOY = ["--experiment=zoo:" + ZOO, "--save_video", "--device=cpu"]

# An env whose rendering initialises pygame, as gymnasium's classic-control envs do for rgb_array (CartPole): SDL
# then installs its own SIGINT/SIGTERM handlers, which only queue a quit event, unless SDL_NO_SIGNAL_HANDLERS is set.
PYGAME_ENJOY = """
import sys
import sample_factory.enjoy as sf_enjoy
make_env = sf_enjoy.make_env_func_batched
def make_env_with_pygame(*args, **kwargs):
    env = make_env(*args, **kwargs)
    import pygame
    pygame.init()
    return env
sf_enjoy.make_env_func_batched = make_env_with_pygame
from sf_kickstart.agents.enjoy import main
sys.exit(main(sys.argv[1:]))
"""


def _snapshot(root):
    return {os.path.relpath(os.path.join(d, f), root): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(root) for f in files}


def _frames(path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _enjoy(args, timeout=180):
    cmd = [sys.executable, "-m", "sf_kickstart.enjoy", *ENJOY, *args]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=timeout)
    return proc, time.time() - t0


def test_the_video_has_its_frames_goes_under_train_dir_and_enjoy_ends(tmp_path):
    package_before = _snapshot(os.path.join(ZOO_DIR, ZOO))
    proc, seconds = _enjoy([f"--train_dir={tmp_path}", "--video_frames=30"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    video = tmp_path / "zoo" / ZOO / "replay.mp4"
    assert f"Video (30 frames): {video}" in proc.stdout  # the path is printed
    assert _frames(video) == 30
    assert seconds < 120
    assert _snapshot(os.path.join(ZOO_DIR, ZOO)) == package_before  # nothing written into the package


def test_an_explicit_max_num_frames_still_decides(tmp_path):
    proc, _ = _enjoy([f"--train_dir={tmp_path}", "--video_frames=30", "--max_num_frames=10", "--video_name=short"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    # SF plays max_num_frames (+1) env steps, one frame each and one more at each episode's end: fewer than 30
    assert 10 <= _frames(tmp_path / "zoo" / ZOO / "short.mp4") < 30


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_enjoy_and_writes_what_was_recorded(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "-c", PYGAME_ENJOY, *ENJOY, f"--train_dir={tmp_path}",
                             "--video_frames=1000000"], cwd=REPO, env=python_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(240, proc.kill)  # a swallowed signal must fail the test, not hang it
    watchdog.start()
    try:
        lines = []
        for line in proc.stdout:  # SF logs every 100 env frames
            lines.append(line)
            if "Num frames 200" in line:
                break
        assert proc.poll() is None, "".join(lines[-30:])
        proc.send_signal(sig)
        t0 = time.time()
        out, _ = proc.communicate(timeout=60)
        stopped_after = time.time() - t0
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, out[-3000:]  # 143 for SIGTERM, 130 for SIGINT
    assert stopped_after < 30
    video = tmp_path / "zoo" / ZOO / "replay.mp4"
    (printed,) = [line for line in out.splitlines() if line.startswith("Video (")]
    assert printed.endswith(str(video))
    recorded = int(printed.split("(")[1].split()[0])
    assert recorded >= 200 and _frames(video) == recorded
