"""Stage 2: the paper's comparison (Schmitt et al. 2018, Tables 1-3, Figure 2) on the embedded MiniGrid suite.

Methods (experiment `<method>_seed<N>`; the large agent is cfg/minigrid_large_student.yaml):

    large_scratch             the large agent from scratch (the baseline of every speedup)
    ks_const_l1, ks_const_l2  kickstarted, constant λ = 1, 2
    ks_linear_l1_to<H>        kickstarted, λ linear from 1 to 0 at H frames, three horizons H per budget
    ks_linear_l2_to<H>        the same from λ = 2
    ks_pbt                    kickstarted, λ evolved by PBT (constant schedule whose scale PBT mutates, together with
                              lr and entropy cost), `--num_policies` members ranked by the suite score; one population
                              (the first seed): the report averages its top-3 members
    distill                   pure policy distillation from the teacher (`--kickstart_distill_only=True`)

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

from typing import List, Optional

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
    teacher_path,
    train_cmd,
)

ABLATION_RUN = "minigrid_ablation"
TEACHER = "{TEACHER}"  # placeholder in the commands, resolved by PlaceholderRunDescription
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


def methods(budget: Budget) -> List[NamedRuns]:
    frames = budget.student_frames

    def large(*flags: str) -> str:
        return train_cmd(LARGE_PRESET, frames, budget, *flags)

    def ks(schedule: str, lam: float, *flags: str) -> str:
        return large(f"--teacher={TEACHER}", f"--kickstart_schedule={schedule}", f"--kickstart_lambda={lam:g}", *flags)

    out = [
        seeded("large_scratch", large(), budget.seeds),
        seeded("ks_const_l1", ks("constant", 1), budget.seeds),
        seeded("ks_const_l2", ks("constant", 2), budget.seeds),
    ]
    for lam in (1, 2):
        for horizon in budget.horizons:
            out.append(
                seeded(
                    f"ks_linear_l{lam}_to{frames_label(horizon)}",
                    ks("linear", lam, f"--kickstart_end_frames={int(horizon)}"),
                    budget.seeds,
                )
            )
    pbt_flags = (
        "--with_pbt=True",
        f"--num_policies={budget.pbt_policies}",
        f"--pbt_target_objective={PBT_OBJECTIVE}",
        f"--pbt_period_env_steps={budget.pbt_period}",
        f"--pbt_start_mutation={budget.pbt_start}",
    )
    out.append(seeded("ks_pbt", ks("constant", 1, *pbt_flags), budget.seeds[:1]))
    out.append(seeded("distill", ks("constant", 1, "--kickstart_distill_only=True"), budget.seeds))
    return out


def build(budget_name: Optional[str] = None) -> PlaceholderRunDescription:
    budget = get_budget(budget_name)
    return PlaceholderRunDescription(ABLATION_RUN, experiments=methods(budget), resolvers={TEACHER: _resolve_teacher})


RUN_DESCRIPTION = build()
