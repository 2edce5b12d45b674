"""`benchmarks/run_records.py`: a finished run's record (the benchmarks' committed copy of what they read of a run)
against the experiment dir it was saved from: a fake dir with real tensorboard events, config, evaluation cache and a
checkpoint name."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from tensorboardX import SummaryWriter

from benchmarks import run_records as rr
from sf_kickstart.evaluation_cache import FORMAT, cache_path, write_json
from sf_kickstart.events import policy_summary_dir, read_scalars

POINTS = {"suite/score": [(1000, 12.3456789), (2000, 45.5), (3000, 60.25)],
          "suite/A_normalized": [(1000, 0.1), (3000, 1.0 / 3.0)],
          "train/lr": [(1000, 1e-4), (2000, 9.87654321e-5)]}
CONFIG = {"env": "minigrid_suite", "learning_rate": 1e-4, "train_for_env_steps": 3000}


def scores(policy: str) -> dict:
    return dict(format=FORMAT, policy=policy, env_steps=3072, suite_score=55.5, suite_score_ci=[50.0, 60.0],
                episodes=10, tasks={"A": {"score": 55.5, "returns": [0.5, 0.6]}})


def fake_experiment(root, name="run_s0", frames=3072) -> str:
    exp = os.path.join(str(root), name)
    writer = SummaryWriter(policy_summary_dir(exp))
    for tag, points in POINTS.items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    writer.close()
    with open(os.path.join(exp, "config.json"), "w") as f:
        json.dump(CONFIG, f)
    write_json(cache_path(exp, "sampled"), scores("sampled"))  # as sf_kickstart.evaluate writes it; no greedy one
    os.makedirs(os.path.join(exp, "checkpoint_p0"), exist_ok=True)
    open(os.path.join(exp, "checkpoint_p0", f"checkpoint_{frames // 1024:09d}_{frames}.pth"), "w").close()
    return exp


def same(a: rr.RunRecord, b: rr.RunRecord) -> None:
    assert (a.name, a.config, a.trained_frames, a.scores) == (b.name, b.config, b.trained_frames, b.scores)
    assert sorted(a.scalars) == sorted(b.scalars)
    for tag in a.scalars:
        assert np.array_equal(a.scalars[tag].steps, b.scalars[tag].steps)
        assert np.array_equal(a.scalars[tag].values, b.scalars[tag].values)


def test_save_then_load_gives_the_dirs_view(tmp_path):
    exp, path = fake_experiment(tmp_path), rr.record_path(str(tmp_path / "records"), "run_s0")
    assert path == str(tmp_path / "records" / "run_s0.json")
    saved = rr.save_record(exp, path, ["suite/*"])
    loaded = rr.load_record(path)
    same(loaded, rr.RunRecord.from_dir(exp, ["suite/*"]))
    same(loaded, saved)
    assert loaded.trained_frames == 3072 and loaded.config == CONFIG and loaded.name == "run_s0"
    assert loaded.scores == {"sampled": scores("sampled")} and loaded.source == path
    raw = read_scalars(policy_summary_dir(exp))[0]
    for tag, series in loaded.scalars.items():  # the events' values (float32) to 6 significant digits
        assert series.steps.tolist() == raw[tag].steps.tolist()
        assert series.values.tolist() == [float(f"{v:.6g}") for v in raw[tag].values]
    assert loaded.scalars["suite/score"].values.tolist() == [12.3457, 45.5, 60.25]


def test_only_the_selected_tags_are_kept(tmp_path):
    exp, path = fake_experiment(tmp_path), str(tmp_path / "r.json")
    rr.save_record(exp, path, ["suite/score", "train/*"])
    assert sorted(rr.load_record(path).scalars) == ["suite/score", "train/lr"]
    rr.save_record(exp, path, lambda tag: tag.endswith("_normalized"))
    assert sorted(rr.load_record(path).scalars) == ["suite/A_normalized"]
    assert sorted(json.load(open(path))["scalars"]) == ["suite/A_normalized"]


def test_the_file_is_deterministic_json_with_sorted_keys(tmp_path):
    exp = fake_experiment(tmp_path)
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    rr.save_record(exp, a, ["suite/*", "train/*"])
    rr.save_record(exp, b, ["suite/*", "train/*"])
    text = open(a).read()
    assert text == open(b).read() and not [p for p in os.listdir(tmp_path) if ".tmp" in p]
    data = json.loads(text)
    assert list(data) == sorted(data) == ["config", "format", "name", "scalars", "scores", "trained_frames"]
    assert data["format"] == 1 and data["scalars"]["suite/score"]["steps"] == [1000, 2000, 3000]
    assert len(text.splitlines()) == 2 + 6 + 3 + 1  # the braces, a line per top-level key and per tag, "}" of scalars


def test_missing_and_malformed_records(tmp_path):
    assert rr.load_record(str(tmp_path / "none.json")) is None
    bad = tmp_path / "bad.json"
    for text in ("{not json", json.dumps({"format": 2}), json.dumps({"format": 1, "name": "x"}),
                 json.dumps(dict(format=1, name="x", trained_frames=1, config=None, scores={},
                                 scalars={"t": {"steps": [1, 2], "values": [1.0]}}))):
        bad.write_text(text)
        with pytest.raises(rr.RecordError, match=str(bad)):
            rr.load_record(str(bad))


def test_open_run_prefers_the_dir_then_the_record(tmp_path):
    records, exp = str(tmp_path / "records"), fake_experiment(tmp_path)
    rr.save_record(exp, rr.record_path(records, "run_s0"), ["suite/*"])
    os.remove(os.path.join(exp, "checkpoint_p0", "checkpoint_000000003_3072.pth"))
    open(os.path.join(exp, "checkpoint_p0", "checkpoint_000000009_9216.pth"), "w").close()
    from_dir = rr.open_run(exp, records, ["suite/score"])
    assert from_dir.trained_frames == 9216 and from_dir.source == exp and list(from_dir.scalars) == ["suite/score"]
    shutil.rmtree(exp)
    from_record = rr.open_run(exp, records, ["suite/score"])
    assert from_record.trained_frames == 3072 and list(from_record.scalars) == ["suite/score"]
    assert rr.record_of(records, exp).trained_frames == 3072
    assert rr.open_run(str(tmp_path / "other_s1"), records, ["suite/*"]) is None


def test_reached_reads_the_dir_or_the_record_and_nothing_else(tmp_path):
    """The benchmarks' one skip rule: the dir's value (when the dir exists and is asked) or the record's."""
    from sf_kickstart.experiments import trained_frames

    records, exp = str(tmp_path / "records"), fake_experiment(tmp_path, frames=3072)
    by_record = lambda record: record.trained_frames  # noqa: E731
    assert rr.reached(exp, records, 3072, trained_frames, by_record)  # the dir: its checkpoint
    assert not rr.reached(exp, records, 3073, trained_frames, by_record)
    assert not rr.reached(exp, records, 3072, None, by_record)  # the dir not asked, and no record yet
    assert not rr.reached(exp, None, 3072, None, by_record)
    rr.save_record(exp, rr.record_path(records, "run_s0"), ["suite/*"])
    shutil.rmtree(exp)
    assert rr.reached(exp, records, 3072, trained_frames, by_record)  # the dir is gone: its record
    assert not rr.reached(exp, records, 4096, trained_frames, by_record)
    assert not rr.reached(str(tmp_path / "other_s1"), records, 1, trained_frames, by_record)
