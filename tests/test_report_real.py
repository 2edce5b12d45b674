"""The report on a small *real* launcher-shaped run: a teacher, a large student from scratch, a kickstarted student
(linear λ) and a PBT population of two, all trained here on CPU for a few thousand frames."""

from __future__ import annotations

import os

import pytest

from sf_kickstart import report
from sf_kickstart.report import cli
from tests.e2e_utils import FAST, describe, run_train

pytestmark = pytest.mark.e2e

TINY = ["--encoder_mlp_layers", "32", "--rnn_size=32", "--stats_avg=5", "--train_for_env_steps=2500"]


@pytest.fixture(scope="module")
def train_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_real")
    teachers = root / "minigrid_teachers"
    ablation = root / "minigrid_ablation"
    runs = [
        (teachers, "small_scratch_seed0", ["--preset=minigrid_small_teacher.yaml"]),
        (ablation, "large_scratch_seed0", ["--preset=minigrid_large_student.yaml"]),
        (ablation, "ks_linear_l1_to2k_seed0", ["--preset=minigrid_large_student.yaml", "--kickstart_schedule=linear",
                                               "--kickstart_end_frames=2000", f"--teacher={teachers}/small_scratch_seed0"]),
        (ablation, "ks_pbt_seed0", ["--preset=minigrid_large_student.yaml", "--kickstart_schedule=constant",
                                    f"--teacher={teachers}/small_scratch_seed0", "--with_pbt=True", "--num_policies=2",
                                    "--pbt_period_env_steps=500", "--pbt_start_mutation=0",
                                    "--pbt_replace_reward_gap=0", "--pbt_replace_reward_gap_absolute=0"]),
    ]
    for train_dir, name, flags in runs:
        proc = run_train(["--env=minigrid_suite", f"--experiment={name}", f"--train_dir={train_dir}", *flags, *TINY, *FAST])
        assert proc.returncode == 0, describe(proc)
    return root


def test_report_on_a_real_run_produces_every_table_and_plot(train_root, tmp_path):
    out = tmp_path / "report"
    rc = cli.main([str(train_root / "minigrid_teachers"), str(train_root / "minigrid_ablation"), f"--out={out}",
                      "--baseline=large_scratch"])
    assert rc == 0
    text = (out / "report.md").read_text()
    for heading in ["Table 1", "Table 2", "Table 3"]:
        assert heading in text, heading
    for method in ["large_scratch", "ks_linear_l1_to2k", "ks_pbt"]:
        assert method in text, method
    for png in ["learning_curves.png", "lambda.png", "pbt_lambda.png"]:
        path = out / png
        assert path.is_file() and path.stat().st_size > 1000, png
    assert not (out / "lambda_tasks.png").exists()  # one teacher, fixed schedules: every task's λ is the same
