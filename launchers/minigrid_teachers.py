"""Stage 1: the small agent from scratch on the embedded MiniGrid suite (cfg/minigrid_small_teacher.yaml).

Its seed-0 run, `small_scratch_seed0`, is the teacher of every kickstarted run in `launchers.minigrid_ablation`; all
seeds together are the "small agent from scratch" row of the report.

    SF_KICKSTART_BUDGET=small python -m sample_factory.launcher.run --run=launchers.minigrid_teachers \
        --backend=processes --max_parallel=2 --pause_between=1
    # then stage 2 with the same --train_dir and --experiment_suffix:
    SF_KICKSTART_BUDGET=small python -m sample_factory.launcher.run --run=launchers.minigrid_ablation \
        --backend=processes --max_parallel=2 --pause_between=1

Runs land in `<train_dir>/minigrid_teachers/small_scratch_<suffix>/small_scratch_seed<N>/`.
"""

from __future__ import annotations

from typing import Optional

from sample_factory.launcher.run_description import RunDescription

from launchers.common import SMALL_PRESET, TEACHER_METHOD, TEACHER_SEED, TEACHERS_RUN, get_budget, seeded, train_cmd


def build(budget_name: Optional[str] = None) -> RunDescription:
    budget = get_budget(budget_name)
    seeds = budget.seeds if TEACHER_SEED in budget.seeds else (TEACHER_SEED, *budget.seeds)
    experiments = [seeded(TEACHER_METHOD, train_cmd(SMALL_PRESET, budget.teacher_frames, budget), seeds)]
    return RunDescription(TEACHERS_RUN, experiments=experiments)


RUN_DESCRIPTION = build()
