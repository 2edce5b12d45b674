"""Issue 9 end to end, on real short CPU runs: a tiny teacher is trained, watched with enjoy (video to a file) and
pushed to a stand-in Hub; a student is kickstarted from that Hub teacher and from the shipped zoo teacher with
periodic evaluation on; evaluate puts them side by side; a plain Sample Factory CartPole run is evaluated and watched."""

from __future__ import annotations

import glob
import json
import os
import subprocess

import pytest

from sf_kickstart.processes import python_path, run_python
from tests.e2e_utils import FAST, REPO, describe, run_plain_sample_factory, run_train, scalars

pytestmark = pytest.mark.e2e

STANDIN = os.path.join(REPO, "tests", "hub_standin")
TINY = ["--use_rnn=True", "--rnn_size=32", "--encoder_mlp_layers=32"]


def run_module(module: str, args, hub: str = None, timeout: int = 300, extra_env=None) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` from the repository root; with `hub`, the stand-in Hugging Face client first on
    PYTHONPATH, serving the repositories under `hub`."""
    env = dict(extra_env or {})
    if hub:
        env.update(PYTHONPATH=python_path(STANDIN), SF_KICKSTART_FAKE_HUB=hub)
    return run_python(["-m", module, *args], timeout=timeout, extra_env=env)


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("evaluate_train_dir"))


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fake_hub"))


@pytest.fixture(scope="module")
def tiny_teacher(train_dir):
    r = run_train(["--env=minigrid_suite", "--experiment=tiny_teacher", f"--train_dir={train_dir}",
                   "--train_for_env_steps=6000", *TINY, *FAST])
    assert r.returncode == 0, describe(r)
    return os.path.join(train_dir, "tiny_teacher")


@pytest.fixture(scope="module")
def pushed(tiny_teacher, train_dir, hub):
    """enjoy with a video, pushed to the stand-in Hub by Sample Factory's own push_to_hub."""
    r = run_module("sf_kickstart.enjoy", [
        "--experiment=tiny_teacher", f"--train_dir={train_dir}", "--env=minigrid_DoorKey-5x5", "--save_video",
        "--video_frames=40", "--max_num_frames=60", "--push_to_hub", "--hf_repository=tester/tiny_teacher",
    ], hub=hub)
    assert r.returncode == 0, describe(r)
    return r


@pytest.fixture(scope="module")
def student(pushed, train_dir, hub, tmp_path_factory):
    """Kickstarted by the Hub teacher on two tasks and by the shipped zoo teacher on two others; periodic eval on."""
    teacher_map = tmp_path_factory.mktemp("maps") / "teachers.yaml"
    teacher_map.write_text(
        "Empty-Random-6x6: {path: 'hf://tester/tiny_teacher', rho: 0.5}\nLavaGapS5: hf://tester/tiny_teacher\n"
        "DoorKey-5x5: zoo:minigrid_suite_small\nMultiRoom-N2-S4: zoo:minigrid_suite_small\n"
    )
    r = run_module("sf_kickstart.train", [
        "--env=minigrid_suite", "--experiment=student", f"--train_dir={train_dir}", f"--teachers={teacher_map}",
        "--train_for_env_steps=10000", "--eval_every_frames=4000", "--eval_episodes=2",
        "--use_rnn=True", "--rnn_size=48", "--encoder_mlp_layers=48", *FAST,
    ], hub=hub, timeout=600)
    assert r.returncode == 0, describe(r)
    return r


def test_enjoy_writes_a_video_without_a_display(pushed, tiny_teacher):
    import cv2

    video = os.path.join(tiny_teacher, "replay.mp4")
    assert os.path.isfile(video), describe(pushed)
    cap = cv2.VideoCapture(video)
    frames = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames += 1
        assert min(frame.shape[:2]) >= 180  # SF upscales small frames
        assert frame.std() > 0  # a rendered grid, not a blank image
    assert 30 <= frames <= 41


def test_push_to_hub_uploads_sample_factorys_layout(pushed, hub):
    repo = os.path.join(hub, "tester", "tiny_teacher")
    assert os.path.isfile(os.path.join(repo, "config.json"))
    assert glob.glob(os.path.join(repo, "checkpoint_p0", "checkpoint_*.pth"))
    assert os.path.isfile(os.path.join(repo, "replay.mp4"))
    card = open(os.path.join(repo, "README.md")).read()
    assert "sample-factory" in card and "sf_kickstart.enjoy" in card and "minigrid_DoorKey-5x5" in card


def test_student_from_hub_and_zoo_teachers_with_progress_and_periodic_eval(student, train_dir, hub):
    out = student.stdout + student.stderr
    # the hub teacher was downloaded into train_dir/hub/<user>/<repo>, once
    local = os.path.join(train_dir, "hub", "tester", "tiny_teacher")
    assert glob.glob(os.path.join(local, "checkpoint_p0", "checkpoint_*.pth"))
    assert not os.path.exists(os.path.join(local, "replay.mp4"))  # only what a teacher needs
    assert open(os.path.join(hub, "downloads.log")).read().split() == ["tester/tiny_teacher"]
    # progress lines: frames, ETA, score, λ over the two teachers (ρ = 1 and 0.5)
    lines = [l for l in out.splitlines() if "Progress:" in l]
    assert lines, out[-3000:]
    assert any("/10k frames" in l and "ETA" in l and "λ" in l and "over 2 teachers" in l for l in lines), lines
    assert "Fps is" in out  # Sample Factory's own lines stay
    # periodic evaluation: eval/* summaries at checkpoint frames, the last one at the end of training
    exp = os.path.join(train_dir, "student")
    suite = scalars(exp, "eval/suite_score")
    assert len(suite) >= 2, out[-3000:]
    assert suite[-1][0] >= 10000
    assert len(scalars(exp, "eval/DoorKey-5x5")) == len(suite)
    assert len(scalars(exp, "eval/MemoryS7_return")) == len(suite)


def test_evaluate_student_against_its_teachers(student, train_dir, hub):
    from sf_kickstart.agents.evaluate import read_task_scores
    from sf_kickstart.sources import ZOO_DIR

    package_before = tree_digest(ZOO_DIR)
    r = run_module("sf_kickstart.evaluate", ["student", f"--train_dir={train_dir}", "--episodes=3"], hub=hub)
    assert r.returncode == 0, describe(r)
    # the shipped teacher was played again (3 episodes): its cache went under train_dir, the package is unchanged
    assert tree_digest(ZOO_DIR) == package_before
    zoo_cache = json.load(open(os.path.join(train_dir, "zoo", "minigrid_suite_small", "evaluation", "scores_greedy_p0.json")))
    assert zoo_cache["episodes"] == 3 and zoo_cache["experiment"] == "zoo:minigrid_suite_small"
    exp = os.path.join(train_dir, "student")
    report = json.load(open(os.path.join(exp, "evaluation", "report_greedy.json")))
    assert report["student"]["name"] == "student"
    assert sorted(t["name"] for t in report["teachers"]) == ["minigrid_suite_small", "tiny_teacher"]
    assert set(report["comparison"]) == {"Empty-Random-6x6", "LavaGapS5", "DoorKey-5x5", "MultiRoom-N2-S4"}
    assert report["comparison"]["DoorKey-5x5"]["teacher"] == "minigrid_suite_small"
    assert all(c["verdict"] in ("beats", "ties", "trails") for c in report["comparison"].values())
    s = report["student"]
    assert len(s["tasks"]) == 9 and all(len(v["returns"]) == 3 for v in s["tasks"].values())
    assert s["suite_score"] == pytest.approx(sum(v["score"] for v in s["tasks"].values()) / 9)
    md = open(os.path.join(exp, "evaluation", "report_greedy.md")).read()
    assert "| DoorKey-5x5 |" in md and "Student beats its teacher on" in md
    # cached next to each agent; the hub teacher was not downloaded again
    assert read_task_scores(exp) == {t: v["score"] for t, v in s["tasks"].items()}
    hub_local = os.path.join(train_dir, "hub", "tester", "tiny_teacher")
    assert set(read_task_scores(hub_local)) == set(s["tasks"])
    assert open(os.path.join(hub, "downloads.log")).read().split() == ["tester/tiny_teacher"]


def test_same_seeds_agent_against_itself_ties(tiny_teacher, train_dir):
    r = run_module("sf_kickstart.evaluate", [
        tiny_teacher, f"--teacher={tiny_teacher}", "--episodes=2", "--policy=sampled", f"--out={train_dir}/self_eval",
    ])
    assert r.returncode == 0, describe(r)
    report = json.load(open(os.path.join(train_dir, "self_eval", "report_sampled.json")))
    s, (t,) = report["student"], report["teachers"]
    for task, v in s["tasks"].items():
        assert v["returns"] == t["tasks"][task]["returns"], task  # same seeds, same weights: same episodes
        assert report["comparison"][task]["verdict"] == "ties"


def test_plain_sample_factory_cartpole_evaluate_and_enjoy(train_dir):
    r = run_plain_sample_factory(["--env=CartPole-v1", "--experiment=cartpole", f"--train_dir={train_dir}",
                                  "--train_for_env_steps=3000", *FAST])
    assert r.returncode == 0, describe(r)
    r = run_module("sf_kickstart.evaluate", ["cartpole", f"--train_dir={train_dir}", "--episodes=4"])
    assert r.returncode == 0, describe(r)
    scores = json.load(open(os.path.join(train_dir, "cartpole", "evaluation", "scores_greedy_p0.json")))
    assert list(scores["tasks"]) == ["CartPole-v1"] and scores["score_kind"] == "mean_return"
    assert scores["suite_score"] == pytest.approx(scores["tasks"]["CartPole-v1"]["mean_return"])
    assert scores["suite_score"] >= 8  # CartPole pays 1 per step: every episode lasts at least 8 steps
    r = run_module("sf_kickstart.enjoy", ["--experiment=cartpole", f"--train_dir={train_dir}", "--no_render",
                                          "--max_num_episodes=2", "--load_checkpoint_kind=latest"])
    assert r.returncode == 0, describe(r)
    assert "Avg episode reward" in r.stdout + r.stderr
    # a checkpoint that does not fit the env asked for: one clear error
    r = run_module("sf_kickstart.enjoy", ["--experiment=cartpole", f"--train_dir={train_dir}", "--env=minigrid_suite",
                                          "--no_render", "--max_num_episodes=1"])
    assert r.returncode == 2, describe(r)
    assert r.stderr.strip().splitlines()[-1].startswith("sf_kickstart: error:") and "cannot be played" in r.stderr


def test_zoo_lists_shipped_local_and_downloaded_teachers(student, train_dir):
    r = run_module("sf_kickstart.zoo", [f"--train_dir={train_dir}", "--env=minigrid_DoorKey-8x8"])
    assert r.returncode == 0, describe(r)
    rows = {l.split(" | ")[0]: l.split(" | ") for l in r.stdout.splitlines()[2:]}
    zoo = rows["zoo:minigrid_suite_small"]
    assert zoo[1] == "shipped" and zoo[2] == "minigrid_suite" and zoo[3] == "MLP 64 + GRU 64" and zoo[-1] == "yes"
    assert float(zoo[5]) > 0  # evaluated score shipped with it
    assert rows["hf://tester/tiny_teacher"][1] == "hub"
    assert rows["tiny_teacher"][3] == "MLP 32 + GRU 32" and rows["tiny_teacher"][-1] == "yes"


def tree_digest(root: str) -> dict:
    """{relative path: sha256} of every file under root (__pycache__ aside)."""
    import hashlib

    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for f in files:
            path = os.path.join(d, f)
            out[os.path.relpath(path, root)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


# ------------------------------------------------------------------------------------------------ per-task entropy
def _per_task(exp, tag_of):
    """{task: values} of a per-task tag (`sf_kickstart.tags.task_entropy`, `task_teacher_entropy`) in a run's events."""
    from sf_kickstart.suites.minigrid import TASK_NAMES

    return {task: [v for _, v in scalars(exp, tag_of(task))] for task in TASK_NAMES if scalars(exp, tag_of(task))}


def _in_entropy_range(per_task) -> bool:
    import math

    return all(0.0 <= v <= math.log(7) + 1e-6 for vs in per_task.values() for v in vs)  # MiniGrid's 7 actions


def test_a_from_scratch_run_on_the_suite_writes_each_tasks_entropy(tiny_teacher):
    from sf_kickstart import tags

    entropy = _per_task(tiny_teacher, tags.task_entropy)
    assert len(entropy) >= 2 and _in_entropy_range(entropy), entropy
    assert not _per_task(tiny_teacher, tags.task_teacher_entropy)


def test_a_kickstarted_run_writes_its_teachers_entropy_on_the_supervised_tasks_only(student, train_dir):
    from sf_kickstart import tags

    exp = os.path.join(train_dir, "student")
    supervised = {"Empty-Random-6x6", "LavaGapS5", "DoorKey-5x5", "MultiRoom-N2-S4"}  # the student fixture's map
    teacher_entropy, entropy = _per_task(exp, tags.task_teacher_entropy), _per_task(exp, tags.task_entropy)
    assert teacher_entropy and set(teacher_entropy) <= supervised, teacher_entropy
    assert set(entropy) - supervised, entropy  # the student's, on unsupervised tasks too
    assert _in_entropy_range(teacher_entropy) and _in_entropy_range(entropy), (teacher_entropy, entropy)
