"""sf_kickstart.report on synthetic Sample Factory experiments written with tensorboardX.

Every run logs at steps 0, 1000, ..., 10000 (k = step / 1000), wall time 1000 + step / 100, so every number below is
computed by hand from the formulas in the report's docstring.

    small_scratch_seed0/1   the teacher (seed 0): suite/score 4.5k (final 45); seed 1: 4k
    large_scratch_seed0/1   6k and 4k                  -> mean 5k, final mean 50 (the baseline)
    ks_const_l1_seed0/1     10k and 8k, teacher seed 0 -> mean 9k, final mean 90, λ = 1
    ks_linear_seed0         7k, λ 1 -> 0 at 5000, per-task λ for 3 tasks (ρ differ) + the teacher's own λ/ρ tags
    ks_pbt_seed0            PBT, 4 members with finals 30, 70, 50, 60; an exploit p2 <- p1 at wall 1050 (frame 5000)
    distill_seed0           unfinished (sf_log.txt without the final 'Collected' line), 2k, ends at 6000
"""

from __future__ import annotations

import json
import os
from datetime import datetime

import numpy as np
import pytest
from tensorboardX import SummaryWriter

from sf_kickstart import report
from sf_kickstart.report import cli
from sf_kickstart.report import Options, analyse, load_experiments, parse_experiment_name

STEPS = [1000 * k for k in range(11)]
TASKS = ["Empty-Random-6x6", "DoorKey-5x5", "DoorKey-8x8"]


def wall(step):
    return 1000.0 + step / 100.0


def write_policy(exp_dir, policy, curves, steps=STEPS):
    w = SummaryWriter(os.path.join(exp_dir, ".summary", str(policy)))
    for step in steps:
        k = step / 1000
        for tag, f in curves.items():
            w.add_scalar(tag, float(f(k)), step, walltime=wall(step))
    w.close()


def write_log(exp_dir, finished=True, exploits=()):
    def ts(t):
        return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]

    lines = [f"[{ts(999)}][00001] Saving configuration to {exp_dir}/config.json..."]
    for t, member, source in exploits:
        lines.append(f"[{ts(t)}][00001] Asking learner {member} to load model from {source}")
    if finished:
        lines.append(f"[{ts(1100)}][00001] Collected {{0: 10240}}, FPS: 1000.0")
    with open(os.path.join(exp_dir, "sf_log.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def make_exp(root, group, name, seed, curves_by_policy, teacher=None, log=True, finished=True, exploits=(), **cfg):
    exp_dir = os.path.join(root, group, name)
    os.makedirs(exp_dir)
    config = dict(experiment=name, seed=seed, env="minigrid_suite", train_dir=os.path.join(root, group),
                  train_for_env_steps=10000, num_policies=len(curves_by_policy), with_pbt=False,
                  kickstart_schedule="constant", kickstart_lambda=1.0, teacher=teacher, teachers=None)
    config.update(cfg)
    with open(os.path.join(exp_dir, "config.json"), "w") as f:
        json.dump(config, f)
    for pid, (curves, steps) in curves_by_policy.items():
        write_policy(exp_dir, pid, curves, steps)
    if log:
        write_log(exp_dir, finished, exploits)
    return exp_dir


def score(slope):
    return {"suite/score": lambda k: slope * k, "reward/reward": lambda k: slope * k / 100}


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("td"))
    teacher = make_exp(root, "teachers/small_scratch_", "small_scratch_seed0", 0, {0: (score(4.5), STEPS)})
    make_exp(root, "teachers/small_scratch_", "small_scratch_seed1", 1, {0: (score(4.0), STEPS)}, log=False)
    abl = "ablation"
    make_exp(root, abl, "large_scratch_seed0", 0, {0: (score(6), STEPS)})
    make_exp(root, abl, "large_scratch_seed1", 1, {0: (score(4), STEPS)})
    ks = {**score(10), "kickstart/lambda": lambda k: 1.0, "kickstart/alpha": lambda k: 1.0,
          "kickstart/kl_teacher_student": lambda k: 0.5 - 0.04 * k, "kickstart/action_agreement": lambda k: 0.05 * k}
    ks8 = {**ks, **score(8)}
    make_exp(root, abl, "ks_const_l1_seed0", 0, {0: (ks, STEPS)}, teacher=teacher)
    make_exp(root, abl, "ks_const_l1_seed1", 1, {0: (ks8, STEPS)}, teacher=teacher)

    lin = {**score(7), "kickstart/lambda": lambda k: max(0.0, 1 - k / 5), "kickstart/alpha": lambda k: max(0.0, 1 - k / 5),
           "kickstart/lambda_small_scratch_seed0": lambda k: max(0.0, 1 - k / 5),
           "kickstart/rho_small_scratch_seed0": lambda k: 1.0}
    for i, t in enumerate(reversed(TASKS)):  # written in reverse: the report must restore the suite's task order
        lin[f"kickstart/lambda_{t}"] = (lambda i: lambda k: (i + 1) * max(0.0, 1 - k / 5))(i)
        lin[f"suite/{t}_normalized"] = (lambda i: lambda k: 10 * (i + 1) + k)(i)
    make_exp(root, abl, "ks_linear_seed0", 0, {0: (lin, STEPS)}, teacher="small_scratch_seed0",  # by name only
             kickstart_schedule="linear", kickstart_end_frames=5000)

    members = {}
    for pid, final in enumerate([30, 70, 50, 60]):
        members[pid] = ({**score(final / 10), "kickstart/lambda": (lambda p: lambda k: 1.0 + 0.1 * p)(pid)}, STEPS)
    make_exp(root, abl, "ks_pbt_seed0", 0, members, teacher=teacher, with_pbt=True, exploits=[(wall(5000), 2, 1)])

    make_exp(root, abl, "distill_seed0", 0, {0: ({**score(2), "kickstart/lambda": lambda k: 1.0}, STEPS[:7])},
             teacher=teacher, finished=False, kickstart_distill_only=True)
    return root


@pytest.fixture(scope="module")
def analysis(train_dir):
    return analyse(load_experiments([train_dir]), Options())


def test_name_grouping():
    assert parse_experiment_name("ks_const_l1_seed3") == ("ks_const_l1", 3)
    assert parse_experiment_name("ks_linear_l1_to250k_seed_12") == ("ks_linear_l1_to250k", 12)
    assert parse_experiment_name("03_atari_envs_see_1") == ("atari_envs", 1)  # Sample Factory launcher naming
    assert parse_experiment_name("teacher") == ("teacher", None)


def test_discovery_grouping_and_status(analysis):
    a = analysis
    assert a.metric == "suite/score"
    assert a.methods == ["large_scratch", "small_scratch", "distill", "ks_const_l1", "ks_linear", "ks_pbt"]
    assert a.baseline == "large_scratch"
    assert sorted(u.exp.seed for u in a.units["large_scratch"]) == [0, 1]
    status = {e.name: e.status for e in a.experiments}
    assert status["distill_seed0"] == "unfinished"
    assert status["small_scratch_seed1"] == "unknown"  # no sf_log.txt
    assert status["large_scratch_seed0"] == "finished"
    assert a.method_running("distill") and not a.method_running("ks_const_l1")


def test_score_at_budgets(analysis):
    a = analysis
    assert a.ref_frames == 10000
    assert a.budget_frames == [1000, 2500, 5000, 10000]
    cells = a.table_budgets["large_scratch"]
    # 2500 frames: last point at or before is step 2000 (k=2): 12 and 8
    assert [c.mean for c in cells] == pytest.approx([5, 10, 25, 50])
    assert [c.std for c in cells] == pytest.approx([1, 2, 5, 10])
    assert a.table_budgets["ks_const_l1"][3].mean == pytest.approx(90)
    # the unfinished distill run ends at 6000: it covers 10% .. 50%, not 100%
    d = a.table_budgets["distill"]
    assert d[2].mean == pytest.approx(10) and d[3].mean is None and (d[3].n, d[3].total) == (0, 1)


def test_frames_to_threshold_and_speedup(analysis):
    a = analysis
    keys = [t.key for t in a.thresholds]
    assert keys == ["teacher", "baseline"]
    assert a.thresholds[0].common == pytest.approx(45)  # the teacher's (small_scratch_seed0) final score
    assert a.thresholds[1].common == pytest.approx(50)  # the baseline's final score
    # mean curves: large 5k, ks_const 9k -> 45 reached at k = 9 and k = 5
    assert a.table_reach["large_scratch"]["teacher"].frames == 9000
    assert a.table_reach["ks_const_l1"]["teacher"].frames == 5000
    assert a.table_speedup["ks_const_l1"]["teacher"].value == pytest.approx(9000 / 5000)
    # 50: k = 10 and k = 6 (54 >= 50)
    assert a.table_reach["ks_const_l1"]["baseline"].frames == 6000
    assert a.table_speedup["ks_const_l1"]["baseline"].value == pytest.approx(10000 / 6000)
    # per run: seed 0 (10k) and seed 1 (8k) both reach 45
    assert a.table_reach["ks_const_l1"]["teacher"].runs_reached == 2
    # large_scratch: seed 0 (6k) reaches 45, seed 1 (4k) never does, the mean does at 9000
    r = a.table_reach["large_scratch"]["teacher"]
    assert (r.runs_reached, r.runs) == (1, 2)
    # distill (2k, up to 6000) never reaches 45: speedup is a bound baseline frames / its last frame
    d = a.table_reach["distill"]["teacher"]
    assert d.frames is None and d.last == 6000
    s = a.table_speedup["distill"]["teacher"]
    assert (s.value, s.bound) == (pytest.approx(9000 / 6000), "<=")
    assert a.surpass["ks_const_l1"] == 5000
    assert a.surpass["ks_linear"] == 7000  # 7k >= 45 first at k = 7; its teacher found by name


def test_final_scores_improvement_and_pbt_top3(analysis):
    a = analysis
    assert a.finals["large_scratch"].mean == pytest.approx(50)
    assert a.finals["ks_const_l1"].mean == pytest.approx(90)
    assert a.improvement["ks_const_l1"] == pytest.approx(80.0)
    assert a.improvement["large_scratch"] == pytest.approx(0.0)
    (population,) = a.units["ks_pbt"]  # a population is one run of its method: the mean of its top 3 members
    assert population.policy == -1 and any("top 3 members by final score: p1, p3, p2" in n for n in a.notes)
    assert a.finals["ks_pbt"].mean == pytest.approx(60)  # top 3 of finals 30, 70, 50, 60
    assert a.finals["ks_pbt"].ci is None  # one population, no interval
    assert len(a.all_units["ks_pbt"]) == 4
    assert a.teachers["ks_pbt"] == ("small_scratch_seed0", pytest.approx(45))
    assert "small_scratch" not in a.teachers and "large_scratch" not in a.teachers


def test_lambda_tags_diagnostics_and_exploits(analysis):
    a = analysis
    assert a.lambda_tasks == {"ks_linear": TASKS}  # suite order; the teacher's own lambda_<teacher> is not a task
    assert a.tasks == TASKS
    assert a.task_scores["ks_linear"]["Empty-Random-6x6"] == pytest.approx(30 + 10)
    assert a.diagnostics["ks_const_l1"]["lambda"] == pytest.approx(1.0)
    assert a.diagnostics["ks_const_l1"]["kl_teacher_student"] == pytest.approx(0.1)
    assert a.diagnostics["ks_linear"]["lambda"] == pytest.approx(0.0)
    assert [e.name for e in a.pbt] == ["ks_pbt_seed0"]
    (f, member, source), = report.exploit_frames(a.pbt[0])
    assert (member, source) == (2, 1) and f == pytest.approx(5000, abs=1)


def test_main_writes_every_table_and_plot(train_dir, tmp_path, capsys):
    out = str(tmp_path / "rep")
    assert cli.main([train_dir, "--out", out, "--thresholds", "80"]) == 0
    files = sorted(os.listdir(out))
    assert files == ["lambda.png", "lambda_tasks.png", "learning_curves.png", "pbt_lambda.png", "report.md"]
    for f in files:
        if f.endswith(".png"):
            with open(os.path.join(out, f), "rb") as fh:
                assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    md = open(os.path.join(out, "report.md")).read()
    for heading in ("## Runs", "## Table 1", "## Table 2", "## Table 3", "## Kickstarting diagnostics",
                    "## Final normalised score per task", "## PBT populations", "## Plots", "## Notes"):
        assert heading in md
    t1, t2, t3 = (table_rows(md, f"## Table {i}") for i in (1, 2, 3))
    # n = 2 seeds (60 and 40 at 10k): the bootstrap means are 40, 50 or 60, so the 95 % interval is [40, 60]
    assert t1["`large_scratch` (baseline)"] == ["2", "5 [4, 6]", "10 [8, 12]", "25 [20, 30]", "50 [40, 60]"]
    assert t1["`distill` *"] == ["1", "2", "4", "10", "-"]  # 2k; ends at 6000: does not cover 10k
    # teacher's final (45), baseline's final (50), score 80: mean curve, per run (seeds 10k, 8k: 45 at 5k and 6k),
    # speedup
    assert t2["`ks_const_l1`"] == [
        "2", "5k", "5.5k [5k, 6k] (2/2)", "1.80×", "6k", "6k [5k, 7k] (2/2)", "1.67×", "9k", "9k [8k, 10k] (2/2)",
        "≥ 1.11×",
    ]
    assert t2["`distill` *"][:4] == ["1", "not by 6k", "- (0/1)", "≤ 1.50×"]
    # finals 100, 80 vs the baseline's 60, 40: the improvement's extremes are (80 - 60) / 60 and (100 - 40) / 40
    assert t3["`ks_const_l1`"] == ["2", "90 [80, 100]", "+80.0% [+33.3%, +150.0%]", "`small_scratch_seed0` (45)", "5k"]
    assert "`distill` *" in md  # unfinished runs are flagged
    assert "p2 ← p1 at 5k" in md
    assert "score 80" in md
    assert "unfinished" in capsys.readouterr().err


def table_rows(md, heading):
    """{method cell: [other cells]} of the first table after a heading."""
    text = md.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_exclude_running_and_methods_filter(train_dir):
    a = analyse(load_experiments([train_dir]), Options(exclude_running=True, methods=("ks_*", "large_*", "distill")))
    assert a.methods == ["large_scratch", "ks_const_l1", "ks_linear", "ks_pbt"]
    assert any("--exclude_running" in n for n in a.notes)


def test_metric_fallback_and_override(train_dir):
    a = analyse(load_experiments([train_dir]), Options(metric="reward/reward", baseline="small_scratch"))
    assert a.baseline == "small_scratch"
    assert a.finals["ks_const_l1"].mean == pytest.approx(0.9)
    assert a.improvement["ks_const_l1"] == pytest.approx(100 * (0.9 - 0.425) / 0.425)


# ---------------------------------------------------------------------------------------------------------------------
# bad input


def test_missing_dir(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_empty_and_unrelated_dirs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main([str(tmp_path / "empty")]) == 1
    assert "no Sample Factory experiment" in capsys.readouterr().err
    (tmp_path / "other" / "sub").mkdir(parents=True)
    (tmp_path / "other" / "sub" / "notes.txt").write_text("hello")
    assert cli.main([str(tmp_path / "other")]) == 1
    assert "no Sample Factory experiment" in capsys.readouterr().err
    assert not (tmp_path / "other" / "report").exists()


def test_no_metric_and_no_kickstart_tags(tmp_path, capsys):
    make_exp(str(tmp_path), "td", "plain_seed0", 0, {0: ({"train/loss": lambda k: 1.0}, STEPS)})
    assert cli.main([str(tmp_path / "td")]) == 1
    err = capsys.readouterr().err
    assert "nothing to report" in err and "train/loss" in err
    assert cli.main([str(tmp_path / "td"), "--metric", "suite/scor"]) == 1
    assert "no run has `suite/scor`" in capsys.readouterr().err


def test_experiment_without_events(tmp_path, capsys):
    os.makedirs(tmp_path / "td" / "exp" / ".summary" / "0")
    assert cli.main([str(tmp_path / "td")]) == 1
    assert "no scalar summaries in any event file" in capsys.readouterr().err


def test_partial_data_is_reported_with_notes(tmp_path, capsys):
    root = str(tmp_path)
    make_exp(root, "td", "large_scratch_seed0", 0, {0: (score(5), STEPS)})
    make_exp(root, "td", "ks_seed0", 0, {0: ({"kickstart/lambda": lambda k: 1.0}, STEPS)}, teacher="/does/not/exist")
    corrupt = tmp_path / "td" / "broken_seed0" / ".summary" / "0"
    os.makedirs(corrupt)
    (corrupt / "events.out.tfevents.123.host").write_bytes(b"\x00garbage" * 20)
    out = str(tmp_path / "out")
    assert cli.main([root + "/td", "--out", out, "--metric", "suite/score"]) == 0
    md = open(os.path.join(out, "report.md")).read()
    assert "## Table 1" in md and "lambda.png" in md
    assert "no `suite/score` in ks_seed0" in md
    assert "teacher ['/does/not/exist'] not found" in md
    assert "no scalar summaries could be read" in md
    err = capsys.readouterr().err
    assert "note:" in err


def test_only_unfinished_runs_still_report(tmp_path):
    make_exp(str(tmp_path), "td", "a_seed0", 0, {0: (score(5), STEPS[:4])}, finished=False)
    a = analyse(load_experiments([str(tmp_path / "td")]), Options())
    assert a.ref_frames == 10000 and a.method_running("a")  # B: the run's target, train_for_env_steps
    assert a.table_budgets["a"][1].mean == pytest.approx(10) and a.table_budgets["a"][3].mean is None
    b = analyse(load_experiments([str(tmp_path / "td")]), Options(frames=3000))
    assert b.budget_frames == [300, 750, 1500, 3000] and b.table_budgets["a"][3].mean == pytest.approx(15)


def test_exploits_from_pbt_summaries(tmp_path):
    members = {pid: ({**score(5 + pid), "kickstart/lambda": lambda k: 1.0}, STEPS) for pid in range(3)}
    exp = make_exp(str(tmp_path), "td", "pbt_seed0", 0, members, with_pbt=True, exploits=[(wall(5000), 2, 1)])
    w = SummaryWriter(os.path.join(exp, ".summary", "0"))
    w.add_scalar("kickstart/pbt_exploit_from", 1, 3000, walltime=wall(3000))
    w.add_scalar("kickstart/pbt_exploit_from", 2, 7000, walltime=wall(7000))
    w.close()
    (e,) = load_experiments([str(tmp_path / "td")])
    # sf_kickstart.pbt's summaries take precedence over the sf_log.txt lines
    assert report.exploit_frames(e) == [(3000.0, 0, 1), (7000.0, 0, 2)]


def test_suite_score_counts_only_once_every_task_reported(tmp_path):
    # the easy task reports first: 80 at k <= 2 while only 1 of 3 tasks has been seen, then the real score 10 + k
    curves = {"suite/score": lambda k: 80.0 if k <= 2 else 10.0 + k, "suite/tasks_seen": lambda k: 1 if k <= 2 else 3}
    make_exp(str(tmp_path), "td", "a_seed0", 0, {0: (curves, STEPS)})
    a = analyse(load_experiments([str(tmp_path / "td")]), Options(thresholds=(13,)))
    (u,) = a.units["a"]
    assert list(u.scalars["suite/score"].steps) == STEPS[3:]
    assert a.table_reach["a"]["score 13"].frames == 3000  # not 0, where only the easy task counted
    assert a.table_budgets["a"][0].mean is None  # 10% (1000 frames): not every task had reported yet


def test_restart_purges_orphaned_points(tmp_path):
    d = str(tmp_path / "e" / ".summary" / "0")
    w = SummaryWriter(d)
    for s, v in [(0, 0.0), (1000, 1.0), (2000, 2.0), (1000, 5.0), (2000, 6.0)]:
        w.add_scalar("suite/score", v, s)
    w.close()
    scalars, notes = report.read_scalars(d)
    s = scalars["suite/score"]
    assert list(s.steps) == [0, 1000, 2000] and list(s.values) == [0.0, 5.0, 6.0] and not notes


def test_mean_curve_uses_common_range():
    a = report.Series(np.array([0.0, 10, 20, 30]), np.array([0.0, 1, 2, 3]), np.zeros(4))
    b = report.Series(np.array([5.0, 15, 25]), np.array([10.0, 11, 12]), np.zeros(3))
    c = report.mean_curve([a, b])
    assert list(c.steps) == [5, 10, 15, 20, 25]
    assert list(c.mean) == pytest.approx([5, 5.5, 6, 6.5, 7])
    assert c.first_reach(6) == 15
