"""End to end on CPU, tiny budgets: `benchmarks/continuous_kickstart.py` (issue 21, item 5) trains its teacher,
evaluates it (adaptive λ's G_T), runs a subset of arms of both parts and writes the report with every arm's row and
the floor lines; a second invocation skips every finished run. And the zoo's ship path for a MuJoCo teacher
(`python -m sf_kickstart.zoo.ship`), into a temporary dir, never into the package."""

from __future__ import annotations

import glob
import hashlib
import json
import os

import pytest
import torch

from sf_kickstart import processes
from sf_kickstart.checkpoints import load_checkpoint
from sf_kickstart.sources import ZOO_DIR
from tests.e2e_utils import describe, run_train

pytestmark = pytest.mark.e2e
pytest.importorskip("mujoco")

TINY = ["--num_workers=1", "--num_envs_per_worker=4", "--worker_num_splits=2", "--batch_size=256", "--rollout=32",
        "--recurrence=32", "--num_batches_per_epoch=1", "--num_epochs=1", "--experiment_summaries_interval=1",
        "--decorrelate_experience_max_seconds=0", "--save_every_sec=5"]
ARMS = ["scratch", "ks_adaptive_mse", "pomdp_scratch", "pomdp_ks_value"]


def bench(train_dir: str, out: str):
    # Hopper: a random policy's episodes end after ~20-50 steps, so a few thousand frames give many episodes and
    # SF's reward/reward (written once --stats_avg episodes ended) has points
    args = ["-m", "benchmarks.continuous_kickstart", "--tasks=mujoco_hopper", "--pomdp_tasks=mujoco_hopper",
            f"--arms={','.join(ARMS)}", "--seeds=0", "--teacher_frames=4000", "--student_frames=3000",
            "--pomdp_frames=3000", "--stats_avg=5", "--eval_episodes=3", f"--train_dir={train_dir}", f"--out={out}",
            "--", *TINY]
    return processes.run_python(args, timeout=900)


def test_the_benchmark_at_a_tiny_budget(tmp_path):
    train_dir, out = str(tmp_path / "td"), str(tmp_path / "out")
    proc = bench(train_dir, out)
    assert proc.returncode == 0, describe(proc)
    md = open(os.path.join(out, "continuous_kickstart_cpu.md")).read()
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    for arm in ARMS:
        assert rows[arm].startswith(f"| {arm} | 1 | "), md  # every arm's row, one seed each
    teacher = rows["mujoco_hopper"]
    assert "`teacher_hopper`" in teacher and "training curve" in teacher and "(3 ep.)" in teacher, teacher
    assert "## (a) mujoco_hopper:" in md and "## (b) mujoco_hopper_pomdp:" in md
    floors = [line for line in md.splitlines() if line.startswith("- Floor")]
    assert len(floors) == 2, md
    assert floors[0].startswith("- Floor 1, mujoco_hopper ks_adaptive_mse: reaches the teacher's final return in ≤ 1/3")
    assert floors[1].startswith(
        "- Floor 2, mujoco_hopper_pomdp pomdp_ks_value: final return ≥ 50 % above pomdp_scratch")
    assert all(("**yes**" in f) != ("**NO**" in f) for f in floors), floors
    data = json.load(open(os.path.join(out, "continuous_kickstart_cpu.json")))
    assert data["teachers"]["mujoco_hopper"]["greedy"]["episodes"] == 3 and not data["failures"]
    assert data["teachers"]["mujoco_hopper"]["final_return"] > 0
    assert all(data["curves"]["mujoco_hopper"][arm][0]["curve"] for arm in ARMS[:2])
    assert os.path.getsize(os.path.join(out, "continuous_kickstart_curves.png")) > 0
    # the student kickstarted privileged: its config reads the teacher's obs from the env's full state
    with open(os.path.join(train_dir, "hopper_pomdp_ks_value_s0", "config.json")) as f:
        cfg = json.load(f)
    assert cfg["teacher_obs_map"] == "obs:state" and cfg["student_obs_keys"] == "obs"
    assert cfg["kickstart_value_coeff"] == 0.5 and cfg["stats_avg"] == 5

    again = bench(train_dir, out)  # resumable: every run's budget is on disk, nothing trains
    assert again.returncode == 0, describe(again)
    skipped = [line for line in again.stdout.splitlines() if line.endswith(": done, skipped")]
    assert len(skipped) == 1 + len(ARMS) and "training to" not in again.stdout, again.stdout[-3000:]


def zoo_files() -> dict:
    """Every file of the package's zoo with its sha256."""
    out = {}
    for path in sorted(glob.glob(os.path.join(ZOO_DIR, "**", "*"), recursive=True)):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[os.path.relpath(path, ZOO_DIR)] = hashlib.sha256(f.read()).hexdigest()
    return out


def card_row(card: str, key: str) -> str:
    return next(line for line in card.splitlines() if line.startswith(f"| {key} |"))


def test_ship_a_tiny_mujoco_teacher_into_a_temporary_zoo(tmp_path):
    from sf_kickstart.suites import mujoco
    from sf_kickstart.teachers import FrozenTeacher, TeacherSpec

    train_dir, zoo = str(tmp_path / "td"), str(tmp_path / "zoo")
    command = ("python -m sf_kickstart.train --preset=mujoco_small_teacher.yaml --env=mujoco_halfcheetah "
               "--experiment=cheetah --train_for_env_steps=4000")
    proc = run_train(["--preset=mujoco_small_teacher.yaml", "--env=mujoco_halfcheetah", "--experiment=cheetah",
                      f"--train_dir={train_dir}", "--train_for_env_steps=4000", *TINY])
    assert proc.returncode == 0, describe(proc)
    package_before = zoo_files()
    ship = processes.run_python(["-m", "sf_kickstart.zoo.ship", os.path.join(train_dir, "cheetah"),
                                 "tiny_cheetah", "--episodes=2", f"--out_dir={zoo}",
                                 f"--command={command}"],
                                timeout=300)
    assert ship.returncode == 0, describe(ship)
    dst = os.path.join(zoo, "tiny_cheetah")
    assert zoo_files() == package_before  # the package's zoo is untouched: same files, same bytes
    (ckpt,) = glob.glob(os.path.join(dst, "checkpoint_p0", "*.pth"))
    assert "optimizer" not in load_checkpoint(ckpt) and os.path.isfile(os.path.join(dst, "config.json"))
    with open(os.path.join(dst, "evaluation", "scores_greedy_p0.json")) as f:
        scores = json.load(f)
    assert scores["episodes"] == 2 and scores["score_kind"] == "mean_return" and scores["env"] == "mujoco_halfcheetah"
    assert os.path.basename(ckpt) == scores["checkpoint"]
    card = open(os.path.join(dst, "README.md")).read()
    assert card_row(card, "env") == "| env | `mujoco_halfcheetah` |"
    assert card_row(card, "architecture") == "| architecture | MLP 64-64 |"
    lo, hi = scores["suite_score_ci"]
    assert card_row(card, "evaluated mean return") == (
        f"| evaluated mean return | {scores['suite_score']:.1f} [{lo:.1f}, {hi:.1f}] |")
    assert command in card and "--episodes=2" in card
    # the listing sees it, and the stripped checkpoint loads as a privileged teacher of the pomdp variant
    listing = processes.run_python(["-m", "sf_kickstart.zoo", f"--train_dir={zoo}"], timeout=120)
    assert listing.returncode == 0 and "tiny_cheetah" in listing.stdout, describe(listing)
    env = mujoco.make_mujoco_pomdp_env("mujoco_halfcheetah_pomdp")
    obs_space, action_space = env.observation_space, env.action_space
    env.close()
    teacher = FrozenTeacher(TeacherSpec(path=dst, obs_map={"obs": "state"}, obs_keys=["obs"]), obs_space, action_space,
                            fast=False)
    obs = {k: torch.randn(3, *space.shape) for k, space in obs_space.spaces.items()}
    logits, _ = teacher.forward(obs, torch.zeros(3, 1))
    assert logits.shape == (3, 12) and torch.isfinite(logits).all()  # 6 means, 6 log-stds
