"""benchmarks/main_job.py's analysis on synthetic runs, numbers worked out by hand."""

import json
import os
import shutil

import numpy as np
import pytest
from tensorboardX import SummaryWriter

from benchmarks import main_job
from sf_kickstart.evaluation_cache import FORMAT, cache_path, write_json
from sf_kickstart.events import Series

MARKS = np.array([0.5e6, 1e6, 1.5e6, 2e6])


def _series(steps, values):
    steps = np.asarray(steps, dtype=float)
    return Series(steps, np.asarray(values, dtype=float), np.zeros(len(steps)))


def _run(train, tasks, eval_values=None, final=None, kl=None):
    run = dict(train=np.asarray(train, dtype=float), train_tasks={k: np.asarray(v, float) for k, v in tasks.items()},
               eval_steps=None if eval_values is None else MARKS, eval=eval_values, diagnostics={}, final=final or {})
    if kl is not None:
        run["diagnostics"]["train/kl_divergence"] = _series([0.6e6, 1.2e6, 1.4e6, 1.8e6], kl)
    return run


def test_at_marks_averages_the_window_before_each_mark():
    s = _series([0.4e6, 0.45e6, 0.5e6, 0.9e6, 1.45e6], [10, 20, 30, 40, 50])
    got = main_job.at_marks(s, MARKS, 0.25e6)
    assert got[0] == 20.0 and got[1] == 40.0 and got[2] == 50.0 and np.isnan(got[3])


def test_collapse_names_the_task_that_fell_most_and_the_window_diagnostics():
    run = _run([50, 60, 30, 62], {"A": [99, 99, 90, 99], "B": [10, 20, 0, 20]}, kl=[0.001, 0.05, 0.03, 0.001])
    events = main_job.collapses(run, MARKS, drop=15.0)
    assert len(events) == 1
    e = events[0]
    assert (e["at"], e["before"], e["after"], e["task"], e["task_drop"]) == (1_500_000, 60.0, 30.0, "B", 20.0)
    kl = e["diagnostics"]["train/kl_divergence"]
    assert kl["window"] == pytest.approx(0.04)  # the points at 1.2M and 1.4M, in (1M, 1.5M]
    assert kl["run_median"] == pytest.approx(0.0155)  # median of 0.001, 0.001, 0.03, 0.05
    assert main_job.collapses(run, MARKS, drop=31.0) == []


def test_largest_eval_fall_after_reaching_the_teacher_and_anywhere():
    run = _run([0] * 4, {}, eval_values=np.array([50.0, 70.0, 65.0, 80.0]))
    assert main_job.max_eval_drop_after_reaching(run, 69.1) == 5.0
    assert main_job.max_eval_drop_after_reaching(_run([0] * 4, {}, np.array([80.0, 1.0, 2.0, 90.0])), -np.inf) == 79.0
    assert main_job.max_eval_drop_after_reaching(_run([0] * 4, {}, np.array([1.0, 2.0, 3.0, 4.0])), 69.1) is None


def test_checks_need_seeds_for_an_interval_and_compare_with_scratch():
    teacher = dict(suite=69.1, suite_ci=[67.6, 70.5], tasks={"A": 99.0, "B": 50.0})
    final = lambda suite, a, b: {"greedy": dict(suite=suite, tasks={"A": a, "B": b})}  # noqa: E731
    main = [_run([70, 71, 72, 80], {}, np.array([70.0, 72.0, 73.0, 79.0]), final(80 + i, 99, 60)) for i in range(3)]
    scratch = [_run([50, 60, 70, 78], {}, None, final(75, 99, 55)) for _ in range(3)]
    c = main_job.checks(main, scratch, teacher, MARKS, "greedy")
    assert c["above_teacher_ci_apart"]["ok"] and c["trails_on_no_task"]["ok"] and c["ahead_of_scratch"]["ok"]
    assert c["eval_never_drops_10"]["ok"]
    one = main_job.checks(main[:1], scratch, teacher, MARKS, "greedy")
    assert not one["above_teacher_ci_apart"]["ok"]  # one seed: no interval, not a result
    assert one["trails_on_no_task"]["trailing"] == ["A", "B"]
    behind = [_run([70, 71, 60, 80], {}, None, final(80 + i, 99, 60)) for i in range(3)]
    assert main_job.checks(behind, scratch, teacher, MARKS, "greedy")["ahead_of_scratch"]["marks_behind_by_more_than_2"] == [1_500_000]
    trailing = [_run([70] * 4, {}, None, final(80, 99, 40 + i)) for i in range(3)]
    assert main_job.checks(trailing, scratch, teacher, MARKS, "greedy")["trails_on_no_task"]["trailing"] == ["B"]


# ------------------------------------------------------------------------------------------------ run records
TEACHER_TASKS = list(main_job.teacher_scores()["tasks"])
MARK_STEPS = [250_000, 500_000, 750_000, 1_000_000]


def fake_run(train_dir: str, name: str, base: float) -> None:
    """A finished run as main_job leaves it: summaries, config, both evaluations of its last checkpoint."""
    exp = os.path.join(train_dir, name)
    writer = SummaryWriter(os.path.join(exp, ".summary", "0"))
    for i, step in enumerate(MARK_STEPS):
        for tag, value in {"suite/score": base + [0, 20, -10, 25][i], "eval/suite_score": base + 5 * i,
                           "suite/DoorKey-5x5_normalized": base + [0, 30, 0, 30][i], "suite/MemoryS7_normalized": 50.0,
                           "train/lr": [1e-4, 5e-5, 1e-4, 1e-4][i], "train/kl_divergence": 0.01 * (i + 1),
                           "train/entropy": 1.0 - 0.1 * i, "perf/fps": 1000.0}.items():
            writer.add_scalar(tag, value, step)
    writer.close()
    with open(os.path.join(exp, "config.json"), "w") as f:
        json.dump({"learning_rate": 1e-4, "train_for_env_steps": 1_000_000, "lr_schedule": "constant"}, f)
    for policy in main_job.POLICIES:
        write_json(cache_path(exp, policy), dict(
            format=FORMAT, policy=policy, env_steps=1_000_448, suite_score=base + 20, suite_score_ci=[base, base + 30],
            tasks={t: {"score": base + j} for j, t in enumerate(TEACHER_TASKS)}))


def bench_argv(train_dir: str, out: str, records: str, *more: str):
    return ["--arms=ks_main,scratch_fixed", "--seeds=0,1", "--frames=1000000", "--mark=250000", "--table_every=250000",
            f"--train_dir={train_dir}", f"--out={out}", f"--records={records}", *more]


def fake_runs(tmp_path):
    train_dir, out, records = str(tmp_path / "td"), str(tmp_path / "out"), str(tmp_path / "records")
    for j, name in enumerate(["ks_main_s0", "ks_main_s1", "scratch_fixed_s0", "scratch_fixed_s1"]):
        fake_run(train_dir, name, 50.0 + 3 * j)
    return train_dir, out, records


def report(out: str):
    return tuple(open(os.path.join(out, f"main_job_cpu.{ext}")).read() for ext in ("md", "json"))


def test_the_analysis_from_records_alone_is_the_analysis_from_the_dirs(tmp_path):
    train_dir, out, records = fake_runs(tmp_path)
    assert main_job.main(bench_argv(train_dir, out, records, "--analyze_only")) == 0  # exports every finished run
    assert sorted(os.listdir(records)) == ["ks_main_s0.json", "ks_main_s1.json", "scratch_fixed_s0.json",
                                           "scratch_fixed_s1.json"]
    saved = json.load(open(os.path.join(records, "ks_main_s0.json")))
    assert "perf/fps" not in saved["scalars"] and "suite/DoorKey-5x5_normalized" in saved["scalars"]
    md, data = report(out)
    shutil.rmtree(train_dir)
    assert main_job.main(bench_argv(train_dir, out, records, "--analyze_only")) == 0
    assert report(out) == (md, data)
    result = json.loads(data)
    assert result["seeds"] == {"ks_main": ["ks_main_s0", "ks_main_s1"],
                               "scratch_fixed": ["scratch_fixed_s0", "scratch_fixed_s1"]}
    assert result["brake"]["ks_main_s0"]["braked_share"] == 0.25  # from the config the record holds
    assert [e["task"] for e in result["collapses"]["ks_main_s0"]] == ["DoorKey-5x5"]  # 70 -> 40 at 750K
    assert "checks" in result


def test_a_run_with_a_finished_record_is_not_trained_again(tmp_path, monkeypatch, capsys):
    train_dir, out, records = fake_runs(tmp_path)
    assert main_job.main(bench_argv(train_dir, out, records, "--analyze_only")) == 0
    shutil.rmtree(train_dir)  # a fresh machine: only the records are left

    def no_training(*args, **kwargs):
        raise AssertionError(f"ran {args}")

    monkeypatch.setattr(main_job, "run_train", no_training)
    monkeypatch.setattr(main_job, "run_python", no_training)
    capsys.readouterr()
    assert main_job.main(bench_argv(train_dir, out, records)) == 0
    skipped = [line for line in capsys.readouterr().out.splitlines() if line.endswith(": done, skipped")]
    assert len(skipped) == 4
    assert not main_job.finished(os.path.join(train_dir, "ks_main_s0"), 2_000_000, records)  # a longer budget


@pytest.mark.e2e
def test_a_runs_log_goes_into_a_train_dir_that_does_not_exist_yet(tmp_path):
    """The benchmarks log each run to <train_dir>/<name>.log before Sample Factory makes train_dir (a fresh machine)."""
    from sf_kickstart.processes import run_python

    log = tmp_path / "new_train_dir" / "run.log"
    run_python(["-c", "print('trained')"], log_path=str(log), check=True, append=True)
    assert "trained" in log.read_text()


def test_per_task_tables_show_mean_and_min_over_seeds_of_any_per_task_entry():
    runs = {"ks_main": [dict(task_entropy={"A": np.array([1.5, 1.8, 1.9, 1.2])}),
                        dict(task_entropy={"A": np.array([0.5, np.nan, 1.7, 0.8])})]}
    lines = main_job.per_task_curves(runs, MARKS, 1_000_000, "task_entropy", "entropy", 2)
    assert lines[0] == "| arm / task (entropy, mean over seeds; min over seeds) | 1M | 2M |"
    assert lines[2] == "| ks_main / A | 1.80; 1.80 | 1.00; 0.80 |"  # 1M: the seed without a value is left out
