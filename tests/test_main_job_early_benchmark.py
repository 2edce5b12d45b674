"""benchmarks/main_job_early.py on synthetic run records: its arms, the marks' windows worked out by hand, and that a
recorded run (its own, or a main-job record for the main job's arms) is not trained again."""

import json
import os

import numpy as np
import pytest

from benchmarks import main_job_early
from benchmarks.run_records import FORMAT


def _record(path, name, scalars):
    with open(path, "w") as f:
        json.dump(dict(format=FORMAT, name=name, trained_frames=1_050_000, config=None, scores={},
                       scalars={t: dict(steps=s, values=v) for t, (s, v) in scalars.items()}), f)


def _scalars(level):
    """suite score `level` everywhere; KeyCorridorS3R1's entropy 1.9 then 1.0 + level/100 from 60K on; DoorKey's 0.5."""
    steps = [10_000, 40_000, 60_000, 90_000, 200_000, 450_000, 700_000, 950_000]
    return {
        "suite/score": (steps, [level] * len(steps)),
        "suite/KeyCorridorS3R1_normalized": (steps, [level / 10] * len(steps)),
        "suite/DoorKey-5x5_normalized": (steps, [99.0] * len(steps)),
        "train/task_entropy/KeyCorridorS3R1": (steps, [1.9, 1.9] + [1.0 + level / 100] * 6),
        "train/task_entropy/DoorKey-5x5": (steps, [0.5] * len(steps)),
    }


def test_arms_are_the_main_jobs_or_ks_main_with_one_flag_set():
    assert main_job_early.arm_flags("ks_untaught_0.1")[-1] == "--kickstart_untaught_entropy=0.1"
    assert main_job_early.arm_flags("ks_untaught_0.1")[:-1] == main_job_early.MAIN_JOB_ARMS["ks_main"]
    assert main_job_early.arm_flags("ks_alpha_0.3")[-1] == "--kickstart_lambda=0.3"
    assert main_job_early.arm_flags("ks_alpha_0.3")[:-1] == main_job_early.MAIN_JOB_ARMS["ks_main"]
    for bad in ("ks_untaught", "ks_alpha_", "ks_beta_0.3"):
        with pytest.raises(SystemExit, match="unknown arm"):
            main_job_early.arm_flags(bad)


def test_the_analysis_from_records_by_hand(tmp_path, monkeypatch):
    records, main_records = tmp_path / "early_runs", tmp_path / "main_job_runs"
    records.mkdir(), main_records.mkdir()
    _record(records / "ks_untaught_0.1_s0.json", "ks_untaught_0.1_s0", _scalars(60.0))
    _record(records / "ks_untaught_0.1_s1.json", "ks_untaught_0.1_s1", _scalars(80.0))
    _record(main_records / "ks_main_s0.json", "ks_main_s0", _scalars(40.0))  # a 4M run's record of the main job
    monkeypatch.setattr(main_job_early, "MAIN_JOB_RECORDS", str(main_records))
    out = tmp_path / "out"
    argv = [f"--records={records}", f"--out={out}", f"--train_dir={tmp_path / 'none'}", "--arms=ks_untaught_0.1,ks_main"]
    main_job_early.main(argv + ["--seeds=0"])  # both recorded (ks_main_s0 by the main job): nothing is trained
    main_job_early.main(argv + ["--seeds=0,1", "--analyze_only"])
    result = json.load(open(out / "main_job_early_cpu.json"))
    assert result["seeds"] == {"ks_untaught_0.1": [0, 1], "ks_main": [0]}
    entropy = result["curves"]["ks_untaught_0.1"]["KeyCorridorS3R1 entropy"]
    assert entropy[0] == pytest.approx([1.9, 1.9])  # the 50K mark: the points in (0, 50K]
    assert entropy[1] == pytest.approx([1.6, 1.8])  # 100K: the points at 60K and 90K
    assert result["curves"]["ks_main"]["entropy, the other tasks (mean)"][2] == [0.5]
    text = open(out / "main_job_early_cpu.md").read()
    assert "| ks_untaught_0.1 | 1.90 [1.90, 1.90] | 1.70 [1.60, 1.80] |" in text
    assert "| ks_main | 40.0 (1 seed) |" in text
    assert np.isnan(result["curves"]["ks_main"]["KeyCorridorS3R3 score"][0][0])  # a task the records lack: NaN
