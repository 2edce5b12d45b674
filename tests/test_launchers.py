"""The launcher run descriptions: every generated command parses with sf_kickstart.train's own parser, the ablation
has the paper's methods, Sample Factory's process and slurm backends generate the runs (subprocess/sbatch stubbed:
nothing is trained or submitted), and the experts map matches the experts launcher."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest
import yaml

import launchers.common as common
from launchers import minigrid_ablation, minigrid_experts, minigrid_teachers
from sample_factory.launcher import run as sf_run
from sample_factory.launcher import run_processes, run_slurm
from sf_kickstart.report import parse_experiment_name
from sf_kickstart.kickstart.schedules import KickstartSchedule
from sf_kickstart.suites.minigrid import HARD_SIBLINGS, TASK_NAMES
from sf_kickstart.teachers import parse_teacher_map
from sf_kickstart.paths import REPO_ROOT as REPO
from sf_kickstart.sf.setup import parse_args

MODULES = {"teachers": minigrid_teachers, "ablation": minigrid_ablation, "experts": minigrid_experts}
TEMPLATE = os.path.join(REPO, "launchers", "slurm_template.sh")


def generated(module, budget, train_dir="./train_dir"):
    return list(module.build(budget).generate_experiments(train_dir, makedirs=False))


def split(cmd):
    tokens = cmd.split(" ")  # exactly what sample_factory.launcher.run_processes does
    assert tokens[:3] == ["python", "-m", "sf_kickstart.train"], cmd
    return tokens[3:]


@pytest.fixture(scope="module")
def parsed():
    """{(budget, module): [(name, root_dir, cfg), ...]} for every generated command, parsed once."""
    out = {}
    for budget in common.BUDGETS:
        for key, module in MODULES.items():
            rows = []
            for cmd, name, root_dir, _ in generated(module, budget):
                cfg, _suite = parse_args(split(cmd))
                KickstartSchedule.from_cfg(cfg)  # the λ schedule is valid
                rows.append((name, root_dir, cfg))
            out[budget, key] = rows
    return out


def test_every_command_parses_and_is_runnable(parsed):
    for (budget_name, key), rows in parsed.items():
        budget = common.BUDGETS[budget_name]
        frames = {"teachers": budget.teacher_frames, "ablation": budget.student_frames, "experts": budget.expert_frames}
        names = [n for n, _, _ in rows]
        assert len(set(names)) == len(names), names
        for name, root_dir, cfg in rows:
            assert cfg.experiment == name
            assert cfg.train_dir == os.path.join("./train_dir", root_dir)
            assert cfg.train_for_env_steps == frames[key]
            # Sample Factory refuses to start otherwise (checked in its runner, not by the parser)
            assert cfg.num_envs_per_worker % cfg.worker_num_splits == 0, (budget_name, name)
            # the report groups the run back into its method and seed
            method, seed = parse_experiment_name(name)
            assert seed == cfg.seed and name == f"{method}_seed{seed}"


def test_ablation_methods(parsed):
    for budget_name, budget in common.BUDGETS.items():
        rows = parsed[budget_name, "ablation"]
        by_method = {}
        for name, _, cfg in rows:
            by_method.setdefault(parse_experiment_name(name)[0], []).append(cfg)
        linear = [f"ks_linear_l{lam}_to{common.frames_label(h)}" for lam in (1, 2) for h in budget.horizons]
        every = ["large_scratch", "ks_const_l1", "ks_const_l2", *linear, "ks_pbt", "ks_adaptive", "ks_reengage",
                 "distill"]
        assert sorted(by_method) == sorted(budget.methods or every)
        assert set(budget.methods) <= set(every)
        assert [parse_experiment_name(n)[1] for n, _, _ in rows] == sorted(c.seed for _, _, c in rows)  # seed by seed
        teacher = os.path.join("./train_dir", "minigrid_teachers", "small_scratch_", "small_scratch_seed0")
        for method, cfgs in by_method.items():
            seeds = sorted(c.seed for c in cfgs)
            assert seeds == list(budget.seeds), method
            for c in cfgs:
                assert c.env == "minigrid_suite" and c.rnn_size == 256  # the large agent
                assert not c.with_pbt or method.startswith("ks_pbt")
                if method == "large_scratch":
                    assert c.teacher is None
                    continue
                if method in ("ks_adaptive", "ks_reengage"):  # the teacher and its scores from the same map
                    assert c.teacher is None and c.teachers.endswith(minigrid_ablation.ADAPTIVE_MAP)
                    assert (c.kickstart_schedule, c.kickstart_lambda) == (method[len("ks_"):], 1.0)
                    continue
                assert c.teacher == teacher
                assert c.kickstart_distill_only == (method == "distill")
                if method.startswith("ks_const"):
                    assert (c.kickstart_schedule, c.kickstart_lambda) == ("constant", float(method[-1]))
                if method.startswith("ks_linear"):
                    assert c.kickstart_schedule == "linear"
                    assert c.kickstart_lambda == float(method[len("ks_linear_l")])
                    assert common.frames_label(c.kickstart_end_frames) == method.split("_to")[1]
                if method == "ks_pbt":
                    assert c.pbt_replace_reward_gap == 0 and c.kickstart_pbt_explore_all  # the paper's PBT
                if method.startswith("ks_pbt"):
                    assert c.with_pbt and c.num_policies == budget.pbt_policies
                    assert c.kickstart_schedule == "constant" and c.pbt_target_objective == "suite_score"
                    assert c.kickstart_pbt_zero_below == minigrid_ablation.PBT_ZERO_BELOW
                    assert (c.pbt_period_env_steps, c.pbt_start_mutation) == (budget.pbt_period, budget.pbt_start)


def test_teachers_and_experts(parsed):
    for budget_name, budget in common.BUDGETS.items():
        teachers = parsed[budget_name, "teachers"]
        assert [n for n, _, _ in teachers] == [f"small_scratch_seed{s}" for s in budget.seeds]
        for _, root_dir, c in teachers:
            assert c.rnn_size == 64 and c.teacher is None and root_dir == "minigrid_teachers/small_scratch_"
        experts = parsed[budget_name, "experts"]
        assert [c.env for _, _, c in experts] == [f"minigrid_{t}" for t in TASK_NAMES if t not in HARD_SIBLINGS]
        assert all(c.teacher is None and c.rnn_size == 64 for _, _, c in experts)


def test_budget_and_extra_args(monkeypatch):
    monkeypatch.setenv(common.BUDGET_ENV, "huge")
    with pytest.raises(common.LauncherError, match="smoke, cpu, small, full"):
        common.get_budget()
    monkeypatch.setenv(common.BUDGET_ENV, "Smoke")
    assert common.get_budget().name == "smoke"
    monkeypatch.delenv(common.BUDGET_ENV)
    assert common.get_budget().name == common.DEFAULT_BUDGET
    monkeypatch.setenv(common.EXTRA_ARGS_ENV, "--num_workers=8 --device=gpu")
    (cmd, *_), *_ = generated(minigrid_teachers, "smoke")
    cfg, _ = parse_args(split(cmd))
    assert (cfg.num_workers, cfg.device) == (8, "gpu")
    monkeypatch.setenv(common.EXTRA_ARGS_ENV, "num_workers=8")
    with pytest.raises(common.LauncherError, match="--flag=value"):
        generated(minigrid_teachers, "smoke")
    with pytest.raises(common.LauncherError, match="splits commands on spaces"):
        common.cmd("--teacher=/my teachers/t")


def test_teacher_location_follows_train_dir_suffix_and_override(tmp_path, monkeypatch):
    rd = minigrid_ablation.build("smoke")
    rd.experiment_suffix = "v2"
    cmds = [c for c, *_ in rd.generate_experiments(str(tmp_path), makedirs=False)]
    want = os.path.join(str(tmp_path), "minigrid_teachers", "small_scratch_v2", "small_scratch_seed0")
    assert all(f"--teacher={want} " in c for c in cmds if "--teacher=" in c)
    assert not any("{TEACHER" in c for c in cmds)
    adaptive_map = os.path.join(os.path.dirname(want), minigrid_ablation.ADAPTIVE_MAP)
    assert sum(f"--teachers={adaptive_map} " in c for c in cmds) == 2  # adaptive, reengage
    monkeypatch.setenv(common.TEACHER_ENV, "/elsewhere/my_teacher")
    cmds = [c for c, *_ in minigrid_ablation.build("smoke").generate_experiments(str(tmp_path), makedirs=False)]
    assert sum("--teacher=/elsewhere/my_teacher " in c for c in cmds) == len(cmds) - 3  # scratch, adaptive, reengage
    assert sum("--teachers=/elsewhere/adaptive_teachers.yaml " in c for c in cmds) == 2


def test_adaptive_map_holds_the_teachers_final_task_scores(tmp_path, monkeypatch):
    """The adaptive run's --teachers map: every task the teacher reported, capped at 100, and the teacher's path."""
    from torch.utils.tensorboard import SummaryWriter

    from sf_kickstart import tags

    teacher = os.path.join(str(tmp_path), "t", "small_scratch_seed0")
    os.makedirs(os.path.join(teacher, "checkpoint_p0"))
    open(os.path.join(teacher, "checkpoint_p0", "checkpoint_000000001_1.pth"), "w").close()
    writer = SummaryWriter(os.path.join(teacher, ".summary", "0"))
    for step, (a, b) in enumerate([(10.0, 50.0), (20.0, 130.0)]):
        writer.add_scalar(tags.task_normalized(TASK_NAMES[0]), a, step)
        writer.add_scalar(tags.task_normalized(TASK_NAMES[1]), b, step)
    writer.close()
    monkeypatch.setenv(common.TEACHER_ENV, teacher)
    path = minigrid_ablation._resolve_teacher_map(str(tmp_path), "")
    with open(path) as f:
        data = yaml.safe_load(f)
    assert data == {TASK_NAMES[0]: {"path": teacher, "score": 20.0}, TASK_NAMES[1]: {"path": teacher, "score": 100.0}}


class FakePopen:
    started = []

    def __init__(self, tokens, stdout=None, stderr=None, env=None):
        FakePopen.started.append((tokens, env))
        self.pid, self.returncode = 1000 + len(FakePopen.started), 0

    def poll(self):
        return 0


def _reload(module_name, budget, monkeypatch):
    monkeypatch.setenv(common.BUDGET_ENV, budget)
    return importlib.reload(importlib.import_module(module_name))


def test_processes_backend_through_sf_launcher(tmp_path, monkeypatch):
    """`python -m sample_factory.launcher.run --run=launchers.minigrid_ablation --backend=processes --max_parallel=2`
    with subprocess.Popen stubbed: every run is started once with our entry point and a parsable command line."""
    _reload("launchers.minigrid_ablation", "smoke", monkeypatch)
    FakePopen.started = []
    train_dir = str(tmp_path / "td")
    argv = ["run", "--run=launchers.minigrid_ablation", "--backend=processes", "--max_parallel=2", f"--train_dir={train_dir}"]
    with monkeypatch.context() as m:  # subprocess.Popen is global: undo before parse_args (SF queries git with it)
        m.setattr(run_processes.subprocess, "Popen", FakePopen)
        m.setattr(run_processes.time, "sleep", lambda s: None)
        m.setattr(sys, "argv", argv)
        sf_run.main()
    budget = common.BUDGETS["smoke"]
    # scratch, 2 const, 6 linear, pbt, adaptive, reengage, distill
    assert len(FakePopen.started) == 3 + 2 * len(budget.horizons) + 4
    for tokens, env in FakePopen.started:
        assert tokens[0] == sys.executable and tokens[1:3] == ["-m", "sf_kickstart.train"]
        cfg, _ = parse_args(tokens[3:])
        assert cfg.train_dir.startswith(os.path.join(train_dir, "minigrid_ablation"))
        assert os.path.isdir(cfg.train_dir)  # the launcher makes the root dirs
        assert env[common.BUDGET_ENV] == "smoke"


def _slurm_args(workdir, train_dir, print_only):
    args = [
        "--backend=slurm",
        f"--train_dir={train_dir}",
        f"--slurm_workdir={workdir}",
        f"--slurm_sbatch_template={TEMPLATE}",
        f"--slurm_print_only={print_only}",
        "--slurm_gpus_per_job=1",
        "--slurm_cpus_per_gpu=8",
        "--slurm_timeout=1-00:00:00",
        "--slurm_partition=gpu",
        "--pause_between=0",
    ]
    return sf_run.launcher_argparser(args).parse_args(args)  # what `python -m sample_factory.launcher.run` parses


def test_slurm_scripts_generated_without_slurm(tmp_path, monkeypatch):
    """Sample Factory's slurm backend with sbatch stubbed: one valid bash script per run, holding our command."""
    submitted = []

    class FakeSbatch:
        def __init__(self, tokens, stdout=None):
            submitted.append(tokens)

        def communicate(self):
            return str(100 + len(submitted)).encode(), None

        def wait(self):
            return 0

    monkeypatch.setattr(run_slurm, "Popen", FakeSbatch)
    monkeypatch.setattr(run_slurm.time, "sleep", lambda s: None)
    workdir, train_dir = str(tmp_path / "slurm"), str(tmp_path / "td")
    rd = minigrid_ablation.build("full")
    assert run_slurm.run_slurm(rd, _slurm_args(workdir, train_dir, False)) == 0

    runs = list(minigrid_ablation.build("full").generate_experiments(train_dir, makedirs=False))
    assert len(submitted) == len(runs)
    for (cmd, name, _, _), tokens in zip(runs, submitted):
        script = os.path.join(workdir, f"sbatch_{name}.sh")
        assert tokens == [
            "sbatch", "-p", "gpu", "--gres=gpu:1", "-c", "8", "--parsable",
            "--output", f"{workdir}/sbatch_{name}.sh-slurm-%j.out", os.path.abspath(script),
        ]
        text = open(script).read()
        assert text.startswith("#!/bin/bash\n")
        assert "#SBATCH --time=1-00:00:00" in text and 'cd "${SLURM_SUBMIT_DIR:-.}"' in text
        assert "$CMD" not in text and "$TIMEOUT" not in text
        assert subprocess.run(["bash", "-n", script]).returncode == 0
        assert text.count(cmd) == 1 and text.endswith(f"\n{cmd}\n")
        line = text.splitlines()[-1]
        cfg, _ = parse_args(split(line))
        assert cfg.experiment == name and cfg.train_for_env_steps == common.BUDGETS["full"].student_frames
    assert open(os.path.join(workdir, "scancel.sh")).read() == "scancel " + " ".join(
        str(101 + i) for i in range(len(runs))
    )


def test_slurm_print_only_through_sf_launcher(tmp_path, monkeypatch):
    _reload("launchers.minigrid_teachers", "small", monkeypatch)
    monkeypatch.setattr(run_slurm, "Popen", lambda *a, **k: pytest.fail("sbatch must not run with print_only"))
    monkeypatch.setattr(run_slurm.time, "sleep", lambda s: None)
    workdir = tmp_path / "slurm"
    monkeypatch.setattr(
        sys,
        "argv",
        ["run", "--run=launchers.minigrid_teachers", "--backend=slurm", f"--slurm_workdir={workdir}",
         f"--slurm_sbatch_template={TEMPLATE}", "--slurm_print_only=True", f"--train_dir={tmp_path / 'td'}"],
    )
    sf_run.main()
    scripts = sorted(p.name for p in workdir.glob("sbatch_*.sh"))
    assert scripts == [f"sbatch_small_scratch_seed{s}.sh" for s in common.BUDGETS["small"].seeds]


def test_experts_map_file(tmp_path, monkeypatch):
    with open(minigrid_experts.MAP_FILE) as f:
        shipped = yaml.safe_load(f)
    assert shipped == minigrid_experts.teacher_map()
    assert set(shipped) == set(TASK_NAMES)
    for hard, easy in HARD_SIBLINGS.items():
        assert shipped[hard] == shipped[easy]
    assert os.path.basename(shipped["DoorKey-8x8"]) == "expert_DoorKey-5x5_seed0"
    # the map points exactly where the experts launcher puts its runs
    runs = {name: os.path.normpath(os.path.join("train_dir", root, name))
            for _, name, root, _ in minigrid_experts.build("small").generate_experiments("train_dir", makedirs=False)}
    assert set(shipped.values()) == set(runs.values())
    # sf_kickstart.teachers reads it (from the repository root, where runs start): 6 teachers, hard tasks shared
    monkeypatch.chdir(tmp_path)
    for path in runs.values():
        os.makedirs(path)
    specs = parse_teacher_map(minigrid_experts.MAP_FILE, None, TASK_NAMES)
    assert len(specs) == 6
    tasks = {os.path.basename(s.path): s.tasks for s in specs}
    assert tasks["expert_DoorKey-5x5_seed0"] == ["DoorKey-5x5", "DoorKey-8x8"]
    # another location
    out = tmp_path / "map.yaml"
    assert minigrid_experts.main(["--write_map", str(out), "--train_dir", "/scratch/td", "--experiment_suffix", "b"]) == 0
    other = yaml.safe_load(out.read_text())
    assert other["MultiRoom-N4-S5"] == "/scratch/td/minigrid_experts/experts_b/expert_MultiRoom-N2-S4_seed0"


def test_selected_methods_env(monkeypatch):
    budget = common.get_budget("cpu")
    known = list(minigrid_ablation.method_commands(budget))
    assert common.selected_methods(budget, known, "") == list(budget.methods)
    assert common.selected_methods(budget, known, "ks_pbt, ks_const_l1") == ["ks_pbt", "ks_const_l1"]
    with pytest.raises(common.LauncherError, match="ks_nope"):
        common.selected_methods(budget, known, "ks_const_l1,ks_nope")
    smoke = common.get_budget("smoke")
    assert "ks_pbt_sf" not in [r.base_name for r in minigrid_ablation.methods(smoke)]  # opt-in only
    monkeypatch.setenv(common.METHODS_ENV, "ks_pbt_sf")
    sf_runs = minigrid_ablation.methods(smoke)
    assert [r.base_name for r in sf_runs] == ["ks_pbt_sf"] and "--kickstart_pbt_explore_all=False" in sf_runs[0].cmd
    monkeypatch.setenv(common.METHODS_ENV, "ks_adaptive")
    runs = minigrid_ablation.methods(budget)
    assert [r.base_name for r in runs] == ["ks_adaptive"] * len(budget.seeds)
    assert "ks_reengage" in budget.methods  # the cpu ablation runs it next to linear and adaptive
    monkeypatch.setenv(common.METHODS_ENV, "ks_reengage")
    runs = minigrid_ablation.methods(budget)
    assert [r.base_name for r in runs] == ["ks_reengage"] * len(budget.seeds)
    assert "--kickstart_schedule=reengage" in runs[0].cmd
    assert f"--teachers={minigrid_ablation.TEACHER_MAP}" in runs[0].cmd
