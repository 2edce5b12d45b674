"""Stage 2: the paper's comparison (Schmitt et al. 2018, Tables 1-3, Figure 2) on the embedded MiniGrid suite.

Methods (experiment `<method>_seed<N>`; the large agent is cfg/minigrid_large_student.yaml):

    large_scratch             the large agent from scratch (the baseline of every speedup)
    ks_const_l1, ks_const_l2  kickstarted, constant λ = 1, 2
    ks_linear_l1_to<H>        kickstarted, λ linear from 1 to 0 at H frames, three horizons H per budget
    ks_linear_l2_to<H>        the same from λ = 2
    ks_pbt                    kickstarted, λ evolved by PBT (constant schedule whose scale PBT explores by ×1.2/×0.8
                              or a resample, zero floor 0.05, together with SF's lr and entropy cost), `--num_policies`
                              members ranked by the suite score, the bottom fraction copies the top at every period
                              (`--pbt_replace_reward_gap=0`) and every member explores, member 0 included; one
                              population per seed: the report averages its top-3 members
    ks_pbt_sf                 the same with SF's exploit rule: member 0 never explores, exploit only past a 10 % gap
    ks_adaptive               kickstarted, adaptive λ (`--kickstart_schedule=adaptive`, no tuning): the teacher's score
                              G_T per task is the teacher's final per-task training score, written by this launcher
                              into `<teacher>/../adaptive_teachers.yaml` (a `--teachers` map with `score:` entries)
    ks_reengage               kickstarted, re-engaging per-task λ (`--kickstart_schedule=reengage`, λ = 1, no tuning):
                              λ_k = clip(1 − G_S,k / G_T,k, 0, 1) from the student's current score on task k, so the
                              teacher comes back on a task the student falls behind on; the same map as ks_adaptive
    distill                   pure policy distillation from the teacher (`--kickstart_distill_only=True`)

A budget may run only some methods (`Budget.methods`: the `cpu` budget runs 8; `$SF_KICKSTART_METHODS` picks others). Runs are ordered seed by seed, so a
launch cut short has every method at its first seeds.

The small agent from scratch (the teacher itself) is stage 1, `launchers.minigrid_teachers`: run it first. Every
kickstarted run here uses `--teacher=<train_dir>/minigrid_teachers/small_scratch_<suffix>/small_scratch_seed0`
(same `--train_dir` and `--experiment_suffix` as this launch), or `$SF_KICKSTART_TEACHER` when set. A kickstarted run
whose teacher does not exist stops at once with a clear message (sf_kickstart.train checks it before any worker
starts); the from-scratch runs are unaffected. Sample Factory's slurm backend cannot express job dependencies:
submit stage 2 when stage 1 has finished.

    SF_KICKSTART_BUDGET=small python -m sample_factory.launcher.run --run=launchers.minigrid_ablation \
        --backend=processes --max_parallel=2 --pause_between=1
    SF_KICKSTART_BUDGET=full python -m sample_factory.launcher.run --run=launchers.minigrid_ablation \
        --backend=slurm --slurm_workdir=slurm_ablation --slurm_sbatch_template=launchers/slurm_template.sh \
        --slurm_gpus_per_job=1 --slurm_cpus_per_gpu=16 --pause_between=0
    python -m sf_kickstart.report train_dir/minigrid_teachers train_dir/minigrid_ablation --out report
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import yaml

from sample_factory.utils.utils import log

from launchers.common import (
    LARGE_PRESET,
    Budget,
    NamedRuns,
    PlaceholderRunDescription,
    frames_label,
    get_budget,
    has_checkpoint,
    seeded,
    selected_methods,
    teacher_path,
    train_cmd,
)
from sf_kickstart import tags
from sf_kickstart.events import scalar_points
from sf_kickstart.suites.minigrid import TASK_NAMES

ABLATION_RUN = "minigrid_ablation"
TEACHER = "{TEACHER}"  # placeholders in the commands, resolved by PlaceholderRunDescription
TEACHER_MAP = "{TEACHER_MAP}"
ADAPTIVE_MAP = "adaptive_teachers.yaml"  # the --teachers map with G_T of ks_adaptive and ks_reengage
PBT_ZERO_BELOW = 0.05  # a PBT λ below this is 0: reachable by ×0.8 steps and resamples within a short run
OPT_IN_METHODS = ("ks_pbt_sf",)  # launched only when $SF_KICKSTART_METHODS names them
PBT_OBJECTIVE = "suite_score"  # sf_kickstart.suites.registry.SUITE_SCORE_KEY: the capped mean normalised score


def _resolve_teacher(train_dir: str, suffix: str) -> str:
    path = teacher_path(train_dir, suffix)
    if not has_checkpoint(path):
        log.warning(
            f"Teacher {path} has no checkpoint yet: run stage 1 first (python -m sample_factory.launcher.run "
            f"--run=launchers.minigrid_teachers with the same --train_dir/--experiment_suffix) or set "
            f"$SF_KICKSTART_TEACHER. The kickstarted runs will fail at start-up until it exists."
        )
    return path


def final_task_scores(exp_dir: str) -> Dict[str, float]:
    """A run's last per-task scores on the suite-score scale (min(100, normalised)) from its summaries."""
    out = {}
    for task in TASK_NAMES:
        points = scalar_points(exp_dir, tags.task_normalized(task))
        if points:
            out[task] = min(100.0, float(points[-1][1]))
    return out


def _resolve_teacher_map(train_dir: str, suffix: str) -> str:
    """Write the adaptive and re-engaging runs' --teachers map: every task -> the teacher, with its final training
    score (G_T)."""
    teacher = _resolve_teacher(train_dir, suffix)
    path = os.path.join(os.path.dirname(teacher), ADAPTIVE_MAP)
    scores = final_task_scores(teacher) if has_checkpoint(teacher) else {}
    if not scores:
        log.warning(f"Teacher {teacher} has no per-task scores yet: the adaptive and reengage runs fail at start-up")
        return path
    with open(path, "w") as f:
        yaml.safe_dump({t: {"path": os.path.abspath(teacher), "score": s} for t, s in scores.items()}, f)
    return path


def methods(budget: Budget) -> List[NamedRuns]:
    """Every method's runs, ordered seed by seed (the budget's `methods` only, in its order, when it names some)."""
    commands = method_commands(budget)
    chosen = selected_methods(budget, list(commands), opt_in=OPT_IN_METHODS)
    return [seeded(method, commands[method], [seed]) for seed in budget.seeds for method in chosen]


def method_commands(budget: Budget) -> Dict[str, str]:
    frames = budget.student_frames

    def large(*flags: str) -> str:
        return train_cmd(LARGE_PRESET, frames, budget, *flags)

    def ks(schedule: str, lam: float, *flags: str) -> str:
        return large(f"--teacher={TEACHER}", f"--kickstart_schedule={schedule}", f"--kickstart_lambda={lam:g}", *flags)

    out = {"large_scratch": large(), "ks_const_l1": ks("constant", 1), "ks_const_l2": ks("constant", 2)}
    for lam in (1, 2):
        for horizon in budget.horizons:
            out[f"ks_linear_l{lam}_to{frames_label(horizon)}"] = ks("linear", lam, f"--kickstart_end_frames={int(horizon)}")
    pbt_flags = (
        "--with_pbt=True",
        f"--num_policies={budget.pbt_policies}",
        f"--pbt_target_objective={PBT_OBJECTIVE}",
        f"--pbt_period_env_steps={budget.pbt_period}",
        f"--pbt_start_mutation={budget.pbt_start}",
        f"--kickstart_pbt_zero_below={PBT_ZERO_BELOW:g}",
    )
    out["ks_pbt"] = ks("constant", 1, *pbt_flags, "--pbt_replace_reward_gap=0", "--kickstart_pbt_explore_all=True")
    # SF's exploit rule instead: member 0 an unmutated reference, exploit only past a 10 % gap (stops once members are close)
    out["ks_pbt_sf"] = ks("constant", 1, *pbt_flags, "--pbt_replace_reward_gap=0.1", "--kickstart_pbt_explore_all=False")
    for schedule in ("adaptive", "reengage"):  # λ from the student's scores against the teacher's (the map's)
        out[f"ks_{schedule}"] = large(
            f"--teachers={TEACHER_MAP}", f"--kickstart_schedule={schedule}", "--kickstart_lambda=1"
        )
    out["distill"] = ks("constant", 1, "--kickstart_distill_only=True")
    return out


def build(budget_name: Optional[str] = None) -> PlaceholderRunDescription:
    budget = get_budget(budget_name)
    resolvers = {TEACHER: _resolve_teacher, TEACHER_MAP: _resolve_teacher_map}
    return PlaceholderRunDescription(ABLATION_RUN, experiments=methods(budget), resolvers=resolvers)


RUN_DESCRIPTION = build()
