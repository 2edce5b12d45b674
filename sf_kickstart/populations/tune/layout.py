"""The layout of a Ray Tune population on disk (`<train_dir>/<experiment>/`, Tune's storage for the experiment as
well), written by `python -m sf_kickstart.tune` and read by `sf_kickstart.report`:

  member_NN/           the member's Sample Factory experiment (config.json, checkpoint_p0/, .summary/0/, sf_log.txt,
                       tune_train.log: the output of its `sf_kickstart.train` runs)
  trial_NN/            Tune's trial dir (result.json, progress.csv, checkpoint_NNNNNN/ with the member's Sample Factory
                       checkpoint and `member.json`: whose checkpoint it is)
  pbt_global.txt       Tune's PBT log (one JSON line per exploit)
  tune_population.json ours: status, members, metric, interval, frames, hyperparameters (what the report reads)

Names only (no import of the project, of Ray or of Sample Factory): the report reads a population through this module.
"""

from __future__ import annotations

POPULATION_MARKER = "tune_population.json"
PBT_LOG = "pbt_global.txt"
CHECKPOINT_META = "member.json"
TRAIN_LOG = "tune_train.log"


def member_index(trial_id: str) -> int:
    """Tune's trial ids end in the trial's creation index: '3f2a1_00001' -> 1."""
    return int(trial_id.rsplit("_", 1)[-1])


def member_name(index: int) -> str:
    return f"member_{index:02d}"


def trial_name(index: int) -> str:
    return f"trial_{index:02d}"


def trial_dirname(trial) -> str:
    """Ray Tune's `trial_dirname_creator`: member NN's trial dir is trial_NN."""
    return trial_name(member_index(trial.trial_id))
