"""`benchmarks/continuous_kickstart.py` (issue 21, item 5) without training: its analysis steps on synthetic curves with
hand-computed numbers (frames to reach, the teacher's R_T and F_T, both floors), its grid (arm flags, seed-major plan,
what counts as finished), and the whole report from synthetic runs on disk (tensorboard events + checkpoint names)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from tensorboardX import SummaryWriter

from benchmarks import continuous_kickstart as ck
from sf_kickstart.evaluation_cache import FORMAT, cache_path, write_json
from sf_kickstart.events import Series
from sf_kickstart.experiments import resolve_experiment_dir


def series(points):
    steps, values = zip(*points)
    return Series(np.asarray(steps, float), np.asarray(values, float), np.zeros(len(points)))


# ------------------------------------------------------------------------------------------------ analysis steps
def test_frames_to_reach_is_the_first_summary_at_or_above():
    curve = series([(1000, 10), (2000, 50), (3000, 40), (4000, 80)])
    assert ck.frames_to_reach(curve, 45) == 2000
    assert ck.frames_to_reach(curve, 50) == 2000  # >= counts
    assert ck.frames_to_reach(curve, 60) == 4000  # the dip at 3000 does not matter
    assert ck.frames_to_reach(curve, 81) is None
    assert ck.frames_to_reach(None, 1.0) is None and ck.frames_to_reach(curve, None) is None
    assert ck.final_return(curve) == 80 and ck.final_return(None) is None


def test_teacher_reference_from_its_curve_and_without_one():
    curve = series([(100_000, 100), (200_000, 900), (300_000, 1200), (400_000, 1150)])
    ref = ck.teacher_reference(curve, trained=401_408, sampled_return=999.0)
    # R_T: the last point; F_T: the first step the curve was >= R_T (1200 >= 1150 at 300K), not its budget
    assert ref["final_return"] == 1150 and ref["frames"] == 300_000 and ref["source"] == "training curve"
    zoo = ck.teacher_reference(None, trained=1_501_184, sampled_return=2345.5)
    assert zoo["final_return"] == 2345.5 and zoo["frames"] == 1_501_184 and "upper bound" in zoo["source"]


def test_reach_floor_by_hand():
    # F_T = 330K: the limit is 110K; mean of 90K, 100K, 110K = 100K <= 110K
    f = ck.reach_floor([90_000, 100_000, 110_000], 330_000)
    assert f == dict(ok=True, limit=pytest.approx(110_000), mean=100_000, reached=3, within=3, n=3)
    # on the limit: yes; one seed over it is fine while the mean holds
    f = ck.reach_floor([100_000, 120_000, 110_000], 330_000)
    assert f["ok"] and f["mean"] == 110_000 and f["within"] == 2
    # a seed that never reaches R_T: no mean, no
    f = ck.reach_floor([90_000, None, 100_000], 330_000)
    assert not f["ok"] and f["mean"] is None and f["reached"] == 2 and f["within"] == 2
    assert not ck.reach_floor([200_000, 150_000], 330_000)["ok"]  # mean 175K > 110K
    assert not ck.reach_floor([10], None)["ok"] and not ck.reach_floor([], 330_000)["ok"]


def test_gain_floor_by_hand():
    # mean 330 vs 200: +65 %
    f = ck.gain_floor([300, 330, 360], [200, 220, 180])
    assert f["ok"] and f["gain_pct"] == pytest.approx(65.0) and f["ci"] is not None and f["n"] == f["n_baseline"] == 3
    lo, hi = f["ci"]
    assert lo <= 65.0 <= hi
    # mean 270 vs 200: +35 %, no
    f = ck.gain_floor([250, 290, 270], [200, 190, 210])
    assert not f["ok"] and f["gain_pct"] == pytest.approx(35.0)
    # a negative baseline is measured against its magnitude: -50 vs -100 is +50 %, exactly the floor
    f = ck.gain_floor([-50], [-100])
    assert f["ok"] and f["gain_pct"] == pytest.approx(50.0) and f["ci"] is None  # one seed each: no interval
    assert not ck.gain_floor([1.0], [])["ok"] and ck.gain_floor([1.0], [0.0])["gain_pct"] is None


def test_summarize_arm():
    runs = [dict(seed=0, curve=series([(50_000, 900), (80_000, 1000), (100_000, 1100)]), frames=100_352),
            dict(seed=1, curve=series([(50_000, 1000), (100_000, 1200)]), frames=100_352)]
    s = ck.summarize_arm(runs, 1000)
    assert s["reach"] == [80_000, 50_000] and s["reached"] == 2 and s["finals"] == [1100, 1200]
    # bootstrap over two values: the resampled means are 50K, 65K or 80K, so the 95 % interval is [50K, 80K]
    assert s["reach_stat"] == dict(n=2, mean=65_000, ci=(50_000, 80_000))
    assert s["final_stat"] == dict(n=2, mean=1150, ci=(1100, 1200))
    runs.append(dict(seed=2, curve=series([(100_000, 10)]), frames=100_352))
    s = ck.summarize_arm(runs, 1000)
    assert s["reach"] == [80_000, 50_000, None] and s["reach_stat"] is None and s["reached"] == 2


# ------------------------------------------------------------------------------------------------ the grid
def test_every_arm_has_its_flags():
    args = ck.parse(["--student_frames=200000", "--pomdp_frames=300000", "--value_coeff=0.25"])
    assert args.ks_end_frames == 100_000 and args.pomdp_ks_end_frames == 150_000
    t = "/t/teacher"
    assert ck.arm_flags("scratch", t, args) == [] and ck.arm_flags("pomdp_scratch", t, args) == []
    ks = [f"--teacher={t}", "--kickstart_lambda=1.0"]
    assert ck.arm_flags("ks_linear_ce", t, args) == ks + [
        "--kickstart_schedule=linear", "--kickstart_loss=cross_entropy", "--kickstart_end_frames=100000"]
    assert ck.arm_flags("ks_linear_mse", t, args) == ks + [
        "--kickstart_schedule=linear", "--kickstart_loss=mse_mean", "--kickstart_end_frames=100000"]
    assert ck.arm_flags("ks_linear_ce_std1", t, args) == ks + [
        "--kickstart_schedule=linear", "--kickstart_loss=cross_entropy", "--kickstart_init_stddev=False",
        "--kickstart_end_frames=100000"]
    adaptive = ks + ["--kickstart_schedule=adaptive"]
    assert ck.arm_flags("ks_adaptive_ce", t, args) == adaptive + ["--kickstart_loss=cross_entropy"]
    assert ck.arm_flags("ks_adaptive_mse", t, args) == adaptive + ["--kickstart_loss=mse_mean"]
    pomdp = ks + ["--teacher_obs_map=obs:state", "--kickstart_schedule=linear", "--kickstart_loss=cross_entropy",
                  "--kickstart_end_frames=150000"]
    assert ck.arm_flags("pomdp_ks", t, args) == pomdp
    assert ck.arm_flags("pomdp_ks_value", t, args) == pomdp + ["--kickstart_value_coeff=0.25"]


def test_plan_is_seed_major_and_arms_go_where_they_fit():
    args = ck.parse(["--tasks=mujoco_halfcheetah,mujoco_hopper", "--pomdp_tasks=mujoco_hopper", "--seeds=0,1",
                     "--arms=scratch,ks_linear_ce,pomdp_ks", "--student_frames=1000", "--pomdp_frames=2000"])
    plan = ck.student_plan(args)
    assert [r["name"] for r in plan] == [
        "halfcheetah_scratch_s0", "halfcheetah_ks_linear_ce_s0", "hopper_scratch_s0", "hopper_ks_linear_ce_s0",
        "hopper_pomdp_ks_s0",
        "halfcheetah_scratch_s1", "halfcheetah_ks_linear_ce_s1", "hopper_scratch_s1", "hopper_ks_linear_ce_s1",
        "hopper_pomdp_ks_s1"]
    pomdp = plan[4]
    assert pomdp["env"] == "mujoco_hopper_pomdp" and pomdp["task"] == "mujoco_hopper"
    assert pomdp["preset"] == "mujoco_pomdp_student.yaml" and pomdp["frames"] == 2000
    assert plan[0]["preset"] == "mujoco_large_student.yaml" and plan[0]["frames"] == 1000
    assert ck.parse(["--pomdp_tasks="]).pomdp_tasks == []


def test_bad_flags_are_refused(capsys):
    with pytest.raises(SystemExit):
        ck.parse(["--arms=scratch,ks_cosine"])
    assert "unknown ['ks_cosine']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ck.parse(["--teacher_dirs=mujoco_hopper"])
    assert ck.parse(["--teacher_dirs=mujoco_halfcheetah=zoo:mujoco_halfcheetah_small"]).teacher_dirs == {
        "mujoco_halfcheetah": "zoo:mujoco_halfcheetah_small"}


def fake_checkpoint(exp_dir: str, frames: int) -> None:
    os.makedirs(os.path.join(exp_dir, "checkpoint_p0"), exist_ok=True)
    open(os.path.join(exp_dir, "checkpoint_p0", f"checkpoint_{frames // 1024:09d}_{frames}.pth"), "w").close()


def test_a_run_is_finished_when_its_latest_checkpoint_holds_the_budget(tmp_path):
    exp = str(tmp_path / "run")
    assert not ck.finished(exp, 1000)  # nothing on disk
    fake_checkpoint(exp, 4096)
    assert not ck.finished(exp, 200_000)  # unfinished: resumed
    fake_checkpoint(exp, 200_704)
    assert ck.finished(exp, 200_000) and ck.finished(exp, 200_704)


# ------------------------------------------------------------------------------------------------ the report
def fake_run(train_dir: str, name: str, points, frames: int) -> None:
    exp = os.path.join(train_dir, name)
    fake_checkpoint(exp, frames)
    with open(os.path.join(exp, "config.json"), "w") as f:
        json.dump({"env": "mujoco_hopper"}, f)
    writer = SummaryWriter(os.path.join(exp, ".summary", "0"))
    for step, value in points:
        writer.add_scalar(ck.RETURN_TAG, value, step)
    writer.close()


SYNTHETIC = {
    # teacher: R_T = 1000 (its last point), F_T = 300K (first >= 1000): floor 1's limit is 100K
    "teacher_hopper": [(100_000, 200), (200_000, 800), (300_000, 1000)],
    "hopper_scratch_s0": [(50_000, 100), (100_000, 300)],
    "hopper_scratch_s1": [(50_000, 150), (100_000, 340)],
    "hopper_ks_linear_ce_s0": [(50_000, 900), (80_000, 1000), (100_000, 1100)],
    "hopper_ks_linear_ce_s1": [(50_000, 1000), (100_000, 1200)],
    "hopper_ks_linear_mse_s0": [(50_000, 500), (100_000, 990)],
    "hopper_ks_linear_mse_s1": [(90_000, 1000), (100_000, 1010)],
    "hopper_pomdp_scratch_s0": [(100_000, 100)],
    "hopper_pomdp_scratch_s1": [(100_000, 140)],
    "hopper_pomdp_ks_s0": [(100_000, 200)],
    "hopper_pomdp_ks_s1": [(100_000, 160)],
    "hopper_pomdp_ks_value_s0": [(100_000, 150)],
    "hopper_pomdp_ks_value_s1": [(100_000, 170)],
}


RUN_ARMS = "scratch,ks_linear_ce,ks_linear_mse,pomdp_scratch,pomdp_ks,pomdp_ks_value"  # SYNTHETIC's


def fake_runs(train_dir: str) -> None:
    for name, points in SYNTHETIC.items():
        fake_run(train_dir, name, points, 300_032 if name.startswith("teacher") else 100_352)


def report_argv(train_dir: str, out: str, arms: str = RUN_ARMS, *more: str):
    return ["--tasks=mujoco_hopper", "--pomdp_tasks=mujoco_hopper", "--seeds=0,1", "--teacher_frames=300000",
            "--student_frames=100000", "--pomdp_frames=100000", f"--arms={arms}", f"--train_dir={train_dir}",
            f"--out={out}", *more]


def test_the_report_from_runs_on_disk(tmp_path):
    train_dir, out = str(tmp_path / "td"), str(tmp_path / "out")
    fake_runs(train_dir)
    argv = report_argv(train_dir, out, RUN_ARMS.replace("pomdp_scratch", "ks_adaptive_ce,pomdp_scratch"),
                       "--analyze_only")
    assert ck.main(argv) == 0
    md = open(os.path.join(out, "continuous_kickstart_cpu.md")).read()
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "| mujoco_hopper | `teacher_hopper` | 300032 | 1000 | 300K | training curve | – |" in md
    # scratch never reaches R_T; ks_linear_ce: 80K and 50K, mean 65K [50K, 80K], 300K / 65K = 4.6x;
    # finals 1100, 1200 vs scratch 300, 340: +259 %
    assert rows["scratch"] == "| scratch | 2 | > 100K (0/2) | – | 320 [300, 340] | – |"
    assert rows["ks_linear_ce"].startswith(
        "| ks_linear_ce | 2 | 65K [50K, 80K] (2/2) | 4.6× | 1150 [1100, 1200] | +259 % [")
    assert rows["ks_linear_mse"].startswith("| ks_linear_mse | 2 | > 100K (1/2) | – | 1000 [990, 1010] | +212 % [")
    assert rows["ks_adaptive_ce"] == "| ks_adaptive_ce | 0 | not run | – | – | – |"
    # pomdp: 180 vs 120 is +50 % (the floor exactly), 160 vs 120 is +33 %
    assert rows["pomdp_ks"].startswith("| pomdp_ks | 2 | > 100K (0/2) | – | 180 [160, 200] | +50 % [")
    assert rows["pomdp_ks_value"].startswith("| pomdp_ks_value | 2 | > 100K (0/2) | – | 160 [150, 170] | +33 % [")
    floors = [line for line in md.splitlines() if line.startswith("- Floor")]
    assert floors == [
        "- Floor 1, mujoco_hopper ks_linear_ce: reaches the teacher's final return in ≤ 1/3 of the teacher's frames "
        "(≤ 100K): **yes** (mean 65K; 2/2 seeds reached it, 2/2 within the limit)",
        "- Floor 1, mujoco_hopper ks_linear_mse: reaches the teacher's final return in ≤ 1/3 of the teacher's frames "
        "(≤ 100K): **NO** (mean –; 1/2 seeds reached it, 1/2 within the limit)",
        "- Floor 1, mujoco_hopper ks_adaptive_ce: reaches R_T in ≤ 1/3 of F_T: **not measured** (no run)",
        floors[3], floors[4]]
    assert floors[3].startswith("- Floor 2, mujoco_hopper_pomdp pomdp_ks: final return ≥ 50 % above pomdp_scratch: "
                                "**yes** (+50 % [")
    assert floors[4].startswith("- Floor 2, mujoco_hopper_pomdp pomdp_ks_value: final return ≥ 50 % above "
                                "pomdp_scratch: **NO** (+33 % [")
    data = json.load(open(os.path.join(out, "continuous_kickstart_cpu.json")))
    teacher = data["teachers"]["mujoco_hopper"]
    assert teacher["final_return"] == 1000 and teacher["frames"] == 300_000
    assert data["curves"]["mujoco_hopper"]["ks_linear_ce"][1]["curve"] == [[50_000, 1000], [100_000, 1200]]
    assert [f["ok"] for f in data["floors"]] == [True, False, False, True, False]
    assert os.path.getsize(os.path.join(out, "continuous_kickstart_curves.png")) > 0


def report(out: str):
    """The report's text and its numbers, less where each teacher was read from (its dir, or its record file)."""
    data = json.load(open(os.path.join(out, "continuous_kickstart_cpu.json")))
    paths = {task: t.pop("path") for task, t in data["teachers"].items()}
    return open(os.path.join(out, "continuous_kickstart_cpu.md")).read(), data, paths


def test_the_report_from_records_alone_is_the_report_from_the_dirs(tmp_path):
    train_dir, out, records = str(tmp_path / "td"), str(tmp_path / "out"), str(tmp_path / "records")
    fake_runs(train_dir)
    argv = report_argv(train_dir, out, RUN_ARMS, f"--records={records}", "--analyze_only")
    assert ck.main(argv) == 0  # exports a record of every finished run on disk
    assert sorted(os.listdir(records)) == sorted(f"{name}.json" for name in SYNTHETIC)
    md, data, paths = report(out)
    shutil.rmtree(train_dir)
    assert ck.main(argv) == 0
    md2, data2, paths2 = report(out)
    assert md2 == md and data2 == data and "| ks_linear_ce | 2 | 65K [50K, 80K] (2/2) | 4.6× |" in md
    assert paths["mujoco_hopper"] == os.path.join(train_dir, "teacher_hopper")
    assert paths2["mujoco_hopper"] == os.path.join(records, "teacher_hopper.json")


def test_runs_with_a_finished_record_are_not_trained_again(tmp_path, monkeypatch, capsys):
    train_dir, out, records = str(tmp_path / "td"), str(tmp_path / "out"), str(tmp_path / "records")
    fake_runs(train_dir)
    assert ck.main(report_argv(train_dir, out, RUN_ARMS, f"--records={records}", "--analyze_only")) == 0
    shutil.rmtree(train_dir)  # a fresh machine: only the records are left

    def no_training(*args, **kwargs):
        raise AssertionError(f"trained {args}")

    monkeypatch.setattr(ck, "run_train", no_training)
    monkeypatch.setattr(ck, "evaluate_teachers", lambda dirs, *a, **k: assert_empty(dirs))
    capsys.readouterr()
    assert ck.main(report_argv(train_dir, out, RUN_ARMS, f"--records={records}")) == 0
    skipped = [line for line in capsys.readouterr().out.splitlines() if line.endswith(": done, skipped")]
    assert len(skipped) == len(SYNTHETIC)  # the teacher and every student
    # a kickstarted student still to train needs the teacher's checkpoint, which its record cannot give
    with pytest.raises(SystemExit, match="teacher teacher_hopper finished in another session"):
        ck.main(report_argv(train_dir, out, RUN_ARMS + ",ks_adaptive_ce", f"--records={records}"))


def assert_empty(dirs) -> None:
    assert not list(dirs)


def test_a_zoo_teachers_evaluation_made_in_another_session_comes_from_its_record(tmp_path):
    # a shipped teacher has no return curve: R_T is its sampled evaluation, written under the train_dir of the
    # session that ran it, so a later session reads it from the teacher's record
    train_dir, out, records = str(tmp_path / "td"), str(tmp_path / "out"), str(tmp_path / "records")
    fake_runs(train_dir)
    zoo = resolve_experiment_dir("zoo:mujoco_halfcheetah_small", None)
    write_json(cache_path(zoo, "sampled", train_dir=train_dir),
               dict(format=FORMAT, policy="sampled", suite_score=1500.0, suite_score_ci=[1400.0, 1600.0], episodes=3))
    argv = report_argv(train_dir, out, RUN_ARMS, f"--records={records}", "--analyze_only",
                       "--teacher_dirs=mujoco_hopper=zoo:mujoco_halfcheetah_small")
    assert ck.main(argv) == 0
    md, data, _ = report(out)
    assert data["teachers"]["mujoco_hopper"]["final_return"] == 1500.0
    shutil.rmtree(train_dir)
    assert ck.main(argv) == 0
    assert report(out)[:2] == (md, data)
