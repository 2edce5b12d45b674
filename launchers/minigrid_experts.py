"""One small single-task expert per suite task, for multi-teacher kickstarting (`--teachers=MAP.yaml`).

The paper's DMLab-30 experts covered every level; its hard tasks (e.g. laser tag with 3 bots) were also taught by an
expert on an easier sibling. The embedded suite has three hard tasks whose easier sibling is in the suite
(`sf_kickstart.suites.minigrid.HARD_SIBLINGS`); a small agent rarely solves them from scratch, so their teacher is
the sibling's expert:

    DoorKey-8x8 -> DoorKey-5x5's expert    KeyCorridorS3R3 -> KeyCorridorS3R1's    MultiRoom-N4-S5 -> MultiRoom-N2-S4's

So this launcher trains the six experts that the map uses (`expert_<Task>_seed0`, cfg/minigrid_small_teacher.yaml
with `--env=minigrid_<Task>`), and `cfg/teachers/minigrid_experts.yaml` maps all nine tasks to them, with paths for
the default `--train_dir=./train_dir` and no `--experiment_suffix`, relative to the repository root (where runs are
started). For another location write a map with

    python -m launchers.minigrid_experts --write_map my_map.yaml --train_dir /scratch/train_dir [--experiment_suffix S]

Train them (runs land in `<train_dir>/minigrid_experts/experts_<suffix>/expert_<Task>_seed0/`):

    SF_KICKSTART_BUDGET=small python -m sample_factory.launcher.run --run=launchers.minigrid_experts \
        --backend=processes --max_parallel=2 --pause_between=1
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional

import yaml
from sample_factory.launcher.run_description import RunDescription

from launchers.common import SMALL_PRESET, NamedRuns, experiment_path, get_budget, run_name, train_cmd
from sf_kickstart.paths import CFG_DIR
from sf_kickstart.suites.minigrid import ENV_PREFIX, HARD_SIBLINGS, TASK_NAMES

EXPERTS_RUN = "minigrid_experts"
EXPERTS_BASE = "experts"
EXPERT_SEED = 0
MAP_FILE = os.path.join(CFG_DIR, "teachers", "minigrid_experts.yaml")

#: tasks that get their own expert: every task that is not the hard sibling of another
EXPERT_TASKS: List[str] = [t for t in TASK_NAMES if t not in HARD_SIBLINGS]


def expert_name(task: str) -> str:
    return run_name(f"expert_{task}", EXPERT_SEED)


def teacher_of(task: str) -> str:
    """The task whose expert teaches `task`: itself, or the easier sibling of a hard task."""
    return HARD_SIBLINGS.get(task, task)


def build(budget_name: Optional[str] = None) -> RunDescription:
    budget = get_budget(budget_name)
    runs = [(expert_name(t), {"env": f"{ENV_PREFIX}{t}", "seed": EXPERT_SEED}) for t in EXPERT_TASKS]
    experiment = NamedRuns(EXPERTS_BASE, train_cmd(SMALL_PRESET, budget.expert_frames, budget), runs)
    return RunDescription(EXPERTS_RUN, experiments=[experiment])


def teacher_map(train_dir: str = "train_dir", suffix: str = "") -> Dict[str, str]:
    """task -> expert experiment dir, for every suite task (what `--teachers` reads)."""
    return {
        task: os.path.normpath(experiment_path(train_dir, EXPERTS_RUN, EXPERTS_BASE, suffix, expert_name(teacher_of(task))))
        for task in TASK_NAMES
    }


def map_yaml(train_dir: str = "train_dir", suffix: str = "") -> str:
    header = (
        "# Multi-teacher map for the embedded MiniGrid suite (--teachers=cfg/teachers/minigrid_experts.yaml):\n"
        "# suite task -> single-task expert trained by launchers.minigrid_experts. Hard tasks are taught by the expert of\n"
        "# their easier sibling (DoorKey-8x8 -> DoorKey-5x5, KeyCorridorS3R3 -> KeyCorridorS3R1,\n"
        "# MultiRoom-N4-S5 -> MultiRoom-N2-S4). Paths are relative to the directory runs start in (the repository root)\n"
        f"# for --train_dir={train_dir} and --experiment_suffix={suffix!r}. Regenerate for another location with\n"
        "#   python -m launchers.minigrid_experts --write_map FILE --train_dir DIR [--experiment_suffix S]\n"
    )
    return header + yaml.safe_dump(teacher_map(train_dir, suffix), sort_keys=False, default_flow_style=False)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Write the task -> expert map for --teachers")
    p.add_argument("--write_map", required=True, help="output YAML file")
    p.add_argument("--train_dir", default="train_dir", help="the --train_dir the experts launcher was run with")
    p.add_argument("--experiment_suffix", default="", help="the --experiment_suffix it was run with")
    args = p.parse_args(argv)
    with open(args.write_map, "w") as f:
        f.write(map_yaml(args.train_dir, args.experiment_suffix))
    print(f"wrote {args.write_map}")
    return 0


RUN_DESCRIPTION = build()

if __name__ == "__main__":
    sys.exit(main())
