"""Issue 9 without training: scores and verdicts, the cache reader, the progress line, the device check, teacher URIs
(zoo:, hf:// against a stand-in and against the real client offline), and every bad-input error of evaluate/enjoy."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest

from sf_kickstart import hub
from sf_kickstart.agents import evaluate
from sf_kickstart.agents.evaluate import episode_seed, read_task_scores, summarize, verdict
from sf_kickstart.sf.progress import Progress
from sf_kickstart.suites import minigrid
from sf_kickstart.errors import ExperimentError
from sf_kickstart.processes import run_train
from sf_kickstart.teachers import TeacherError, resolve_experiment_dir
from sf_kickstart.sources import ZOO_DIR, shipped

ZOO_TEACHER = os.path.join(ZOO_DIR, "minigrid_suite_small")


def run_module(module, args, extra_env=None):
    return run_train(args, timeout=300, module=module, extra_env=extra_env)


def one_error_line(r) -> str:
    assert r.returncode == 2, f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("sf_kickstart: error: ") and "Traceback" not in r.stderr
    return line


# ------------------------------------------------------------------------------------------------ scores


def test_summary_of_a_suite_is_capped_normalised_with_cis():
    returns = {"DoorKey-5x5": [0.97, 0.98, 0.99, 0.97], "MemoryS7": [0.0, 1.0, 0.0, 1.0]}
    s = summarize("minigrid_suite", returns)
    dk, mem = s["tasks"]["DoorKey-5x5"], s["tasks"]["MemoryS7"]
    assert dk["mean_return"] == pytest.approx(0.9775)
    assert dk["normalized"] == pytest.approx(minigrid.normalized_score("DoorKey-5x5", 0.9775))
    assert dk["score"] == 100.0 < dk["normalized"]  # capped at the reference
    lo, hi = mem["mean_return_ci"]
    assert lo < 0.5 < hi and 0.0 <= lo and hi <= 1.0
    assert mem["score_ci"][0] < mem["score"] < mem["score_ci"][1]
    assert s["suite_score"] == pytest.approx((dk["score"] + mem["score"]) / 2)
    assert s["suite_score_ci"][0] <= s["suite_score"] <= s["suite_score_ci"][1]
    assert s["score_kind"] == "capped_normalized"


def test_summary_without_normalisation_is_the_mean_return():
    s = summarize("CartPole-v1", {"CartPole-v1": [10.0, 20.0, 30.0]})
    assert s["score_kind"] == "mean_return" and s["suite_score"] == pytest.approx(20.0)
    assert s["tasks"]["CartPole-v1"]["normalized"] is None


def test_verdict_beats_ties_trails():
    good, bad = [1.0, 0.9, 0.95, 1.0] * 10, [0.1, 0.0, 0.2, 0.1] * 10
    assert verdict(good, bad)["verdict"] == "beats"
    assert verdict(bad, good)["verdict"] == "trails"
    assert verdict([0.0, 1.0] * 5, [1.0, 0.0] * 5)["verdict"] == "ties"
    assert verdict(good, bad)["diff"] == pytest.approx(np.mean(good) - np.mean(bad))


def test_episode_seeds_depend_on_task_and_episode_only():
    assert episode_seed(0, "DoorKey-5x5", 3) == episode_seed(0, "DoorKey-5x5", 3)
    assert len({episode_seed(0, t, j) for t in minigrid.TASK_NAMES for j in range(100)}) == 900


def test_read_task_scores_reads_the_cache(tmp_path):
    assert read_task_scores(str(tmp_path)) is None
    data = dict(format=evaluate.FORMAT, tasks={"A": {"score": 12.5}, "B": {"score": 100.0}})
    os.makedirs(tmp_path / "evaluation")
    (tmp_path / "evaluation" / "scores_greedy_p0.json").write_text(json.dumps(data))
    assert read_task_scores(str(tmp_path)) == {"A": 12.5, "B": 100.0}
    assert read_task_scores(str(tmp_path), policy="sampled") is None


def test_shipped_teacher_has_cached_scores_and_a_card():
    assert "minigrid_suite_small" in shipped()
    scores = read_task_scores(ZOO_TEACHER)
    assert set(scores) == set(minigrid.TASK_NAMES)
    card = open(os.path.join(ZOO_TEACHER, "README.md")).read()
    for word in ("minigrid_suite", "MLP 64 + GRU 64", "python -m sf_kickstart.train", "DoorKey-8x8", "frames"):
        assert word in card
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ZOO_TEACHER) for f in fs)
    assert size < 600_000


# ------------------------------------------------------------------------------------------------ progress


class _FakeRunner:
    report_interval_sec = 5.0

    def __init__(self, frames, suite=None):
        from collections import deque

        self.env_steps = {0: frames}
        self.policy_avg_stats = {"suite_score": [deque([suite], maxlen=1)]} if suite is not None else {}


def test_progress_line_has_frames_eta_score_and_lambda():
    from sample_factory.utils.attr_dict import AttrDict

    p = Progress(AttrDict(train_for_env_steps=2_000_000, num_policies=1), ["a", "b", "c"])
    p.on_kickstart_stats(None, {"kickstart_stats": {"lambda_a": 1.0, "lambda_b": 0.5, "lambda_c": 0.0, "lambda": 0.5}}, 0)
    t0 = time.time()
    p.line(_FakeRunner(1_000_000, 40.0), t0)
    line = p.line(_FakeRunner(1_100_000, 42.5), t0 + 10.0)  # 10K frames/s: 900K frames left = 90 s
    assert line == "Progress: 1.1M/2M frames (55.0%), ETA 1m30s, suite score 42.5, λ 0.5 (0..1 over 3 teachers)"
    assert "λ" not in Progress(AttrDict(train_for_env_steps=100, num_policies=1)).line(_FakeRunner(10), t0)


def test_progress_prints_a_last_line_when_the_run_stops_however_short_it_was(caplog):
    """A run shorter than the report interval (a fast machine) still ends with its frames and λ on the console."""
    import logging

    from sample_factory.utils.attr_dict import AttrDict

    p = Progress(AttrDict(train_for_env_steps=10_000, num_policies=1), ["a", "b"])
    p.on_training_step(_FakeRunner(0), 1)  # the first line, at once
    p.on_kickstart_stats(None, {"kickstart_stats": {"lambda_a": 1.0, "lambda_b": 0.5, "lambda": 0.75}}, 0)
    p.on_training_step(_FakeRunner(10_240), 2)  # within the report interval: nothing
    logging.getLogger("rl").propagate, before = True, logging.getLogger("rl").propagate
    try:
        with caplog.at_level(logging.INFO, logger="rl"):
            p.on_stop(_FakeRunner(10_240, 12.5))
    finally:
        logging.getLogger("rl").propagate = before
    assert [r.getMessage() for r in caplog.records if "Progress:" in r.getMessage()] == [
        "Progress: 10.2k/10k frames (102.4%), ETA 0s, suite score 12.5, λ 0.75 (0.5..1 over 2 teachers)"]


# ------------------------------------------------------------------------------------------------ device


def test_device_gpu_without_cuda_is_one_error_before_workers(monkeypatch):
    import torch

    from sf_kickstart.device import DeviceError, check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="--device=cpu"):
        check_device("gpu")
    check_device("cpu")


@pytest.mark.e2e
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
def test_train_with_device_gpu_on_a_cpu_machine_exits_2():
    line = one_error_line(run_module("sf_kickstart.train", ["--env=minigrid_suite", "--experiment=x",
                                                            "--train_dir=/tmp/sf_ks_no_gpu", "--device=gpu"]))
    assert "--device=cpu" in line
    assert not os.path.exists("/tmp/sf_ks_no_gpu/x/checkpoint_p0")


# ------------------------------------------------------------------------------------------------ teacher URIs


def test_zoo_uri_resolves_to_the_shipped_dir():
    assert resolve_experiment_dir("zoo:minigrid_suite_small", None) == ZOO_TEACHER
    with pytest.raises(TeacherError, match="zoo:minigrid_suite_small"):
        resolve_experiment_dir("zoo:nope", None)


def _hub_layout(root, repo_id):
    """The files SF's push_to_hub uploads for an experiment (the experiment dir at the repository root)."""
    repo = os.path.join(root, *repo_id.split("/"))
    shutil.copytree(ZOO_TEACHER, repo)
    os.makedirs(os.path.join(repo, ".summary", "0"))
    for name in ("replay.mp4", "sf_log.txt", ".summary/0/events.out.tfevents.1.x", "git.diff"):
        open(os.path.join(repo, name), "w").write("x")
    return repo


def test_hf_teacher_is_downloaded_once_with_what_a_teacher_needs(tmp_path, monkeypatch):
    import huggingface_hub

    _hub_layout(str(tmp_path / "hub_root"), "someone/small")
    calls = []

    def fake_snapshot_download(repo_id, local_dir, allow_patterns, **kw):
        import fnmatch

        calls.append(repo_id)
        src = str(tmp_path / "hub_root" / repo_id)
        for d, _, files in os.walk(src):
            for f in files:
                rel = os.path.relpath(os.path.join(d, f), src)
                if any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                    os.makedirs(os.path.join(local_dir, os.path.dirname(rel)), exist_ok=True)
                    shutil.copyfile(os.path.join(d, f), os.path.join(local_dir, rel))
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    train_dir = str(tmp_path / "train_dir")
    local = resolve_experiment_dir("hf://someone/small", train_dir)
    assert local == os.path.join(train_dir, "hub", "someone", "small")
    assert os.path.isfile(os.path.join(local, "config.json")) and os.path.isfile(os.path.join(local, "README.md"))
    assert not os.path.exists(os.path.join(local, "replay.mp4")) and not os.path.exists(os.path.join(local, ".summary"))
    assert resolve_experiment_dir("hf://someone/small", train_dir) == local
    assert calls == ["someone/small"]
    assert read_task_scores(local) == read_task_scores(ZOO_TEACHER)


@pytest.mark.e2e
def test_hf_teacher_offline_is_one_error_naming_the_repo(tmp_path):
    line = one_error_line(run_module(
        "sf_kickstart.train",
        ["--env=minigrid_suite", "--experiment=s", f"--train_dir={tmp_path}", "--teacher=hf://someone/missing_teacher",
         "--device=cpu"],
        extra_env={"HF_HUB_OFFLINE": "1"},
    ))
    assert "hf://someone/missing_teacher" in line and "Hugging Face Hub" in line
    with pytest.raises(ExperimentError, match="hf://<user>/<repo>"):
        hub.repo_id_of("hf://no_slash")


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.e2e
def test_evaluate_and_enjoy_on_a_missing_experiment(tmp_path):
    line = one_error_line(run_module("sf_kickstart.evaluate", ["nope", f"--train_dir={tmp_path}"]))
    assert "'nope' does not exist" in line
    line = one_error_line(run_module("sf_kickstart.enjoy", ["--experiment=nope", f"--train_dir={tmp_path}"]))
    assert "'nope' does not exist" in line


@pytest.mark.e2e
@pytest.mark.parametrize("checkpoint, message", [(None, "no latest checkpoint"), (b"not a checkpoint", "could not be loaded")])
def test_evaluate_and_enjoy_without_a_usable_checkpoint(tmp_path, checkpoint, message):
    exp = tmp_path / "broken"
    os.makedirs(exp / "checkpoint_p0")
    shutil.copy(os.path.join(ZOO_TEACHER, "config.json"), exp / "config.json")
    if checkpoint is not None:
        (exp / "checkpoint_p0" / "checkpoint_000000001_100.pth").write_bytes(checkpoint)
    for module, args in (("sf_kickstart.evaluate", [str(exp)]),
                         ("sf_kickstart.enjoy", ["--experiment=broken", f"--train_dir={tmp_path}", "--no_render"])):
        line = one_error_line(run_module(module, args))
        assert message in line, line


@pytest.mark.e2e
def test_evaluate_a_checkpoint_that_does_not_fit_its_env(tmp_path):
    exp = tmp_path / "mismatch"
    shutil.copytree(ZOO_TEACHER, exp)
    cfg = json.load(open(exp / "config.json"))
    cfg["env"] = "CartPole-v1"
    json.dump(cfg, open(exp / "config.json", "w"))
    line = one_error_line(run_module("sf_kickstart.evaluate", [str(exp), "--no_teachers", "--episodes=1"]))
    assert "cannot be played" in line and "does not fit" in line


@pytest.mark.e2e
def test_enjoy_load_checkpoint_kind_best_plays_the_best_checkpoint(tmp_path):
    """--load_checkpoint_kind=best: SF's `best_*.pth` is played (not the newer latest); without one, one error."""
    import torch

    from sf_kickstart.checkpoints import load_checkpoint

    exp = tmp_path / "with_best"
    shutil.copytree(ZOO_TEACHER, exp)
    ckpt_dir = exp / "checkpoint_p0"
    latest = sorted(ckpt_dir.glob("checkpoint_*.pth"))[-1]
    state = load_checkpoint(str(latest))
    state["env_steps"] = 12345  # tells the best checkpoint apart from the latest
    torch.save(state, ckpt_dir / "best_000000003_12345_reward_0.500.pth")
    args = ["--experiment=with_best", f"--train_dir={tmp_path}", "--no_render", "--max_num_frames=40"]
    r = run_module("sf_kickstart.enjoy", [*args, "--load_checkpoint_kind=best"])
    assert r.returncode == 0, f"{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    out = r.stdout + r.stderr
    assert "best_000000003_12345_reward_0.500.pth (12345 frames)" in out, out[-3000:]
    os.remove(ckpt_dir / "best_000000003_12345_reward_0.500.pth")
    line = one_error_line(run_module("sf_kickstart.enjoy", [*args, "--load_checkpoint_kind=best"]))
    assert "no best checkpoint" in line, line
