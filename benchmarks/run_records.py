"""A finished run's record: what a benchmark's analysis reads of a run, small enough to commit, so that runs done in
an earlier session (whose train_dir is gone) are analysed together with today's.

    benchmarks/results/<benchmark>_runs/<experiment>.json
    {"format": 1, "name": ..., "trained_frames": ..., "config": {config.json}, "scores": {policy: evaluation cache},
     "scalars": {tag: {"steps": [...], "values": [...]}}}

`scalars` holds the chosen tags of policy 0's summaries (`events.read_scalars`), `scores` each policy's evaluation cache
(`evaluation_cache.read_scores`), `config` and `trained_frames` what `experiments` reads. `open_run` is the one way a
benchmark reads a run: the experiment dir's view when the dir is on this machine, else its record's. Both views are
the same `RunRecord`, values rounded to 6 significant digits and no wall times (NaN), so a report does not depend on
which one was read.
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np

from sf_kickstart.errors import UserError
from sf_kickstart.evaluation_cache import read_scores
from sf_kickstart.events import Series, policy_summary_dir, read_scalars
from sf_kickstart.experiments import read_config, trained_frames

FORMAT = 1
POLICIES = ("greedy", "sampled")
#: which tags a record keeps: a predicate, or tag names and fnmatch patterns ("suite/*_normalized", "train/*")
Tags = Union[Callable[[str], bool], Sequence[str]]


class RecordError(UserError):
    """A run record that cannot be read; the message names the file."""


def tag_filter(tags: Tags) -> Callable[[str], bool]:
    if callable(tags):
        return tags
    patterns = list(tags)
    return lambda tag: any(fnmatch.fnmatchcase(tag, p) for p in patterns)


def run_name(exp_dir: str) -> str:
    return os.path.basename(os.path.normpath(exp_dir))


def record_path(records_dir: str, name: str) -> str:
    return os.path.join(records_dir, f"{name}.json")


def _series(steps, values) -> Series:
    """A Series as a record holds it: integer steps, values to 6 significant digits, no wall times."""
    steps = np.asarray(steps, dtype=np.int64).astype(np.float64)
    values = np.array([float(f"{float(v):.6g}") for v in values], dtype=np.float64)
    return Series(steps, values, np.full(len(steps), np.nan))


def _scalar_from_json(tag: str, data: dict) -> Series:
    if len(data["steps"]) != len(data["values"]):
        raise ValueError(f"tag {tag!r}: {len(data['steps'])} steps but {len(data['values'])} values")
    return _series(data["steps"], data["values"])


@dataclass
class RunRecord:
    name: str
    scalars: Dict[str, Series]
    scores: Dict[str, dict]  # policy -> its evaluation cache
    config: Optional[dict]
    trained_frames: Optional[int]
    source: str = ""  # where it was read: the experiment dir or the record file (not saved)

    @classmethod
    def from_dir(cls, exp_dir: str, tags: Tags, policies: Sequence[str] = POLICIES,
                 train_dir: Optional[str] = None) -> "RunRecord":
        """The record of an experiment dir as it is now."""
        keep = tag_filter(tags)
        scalars = read_scalars(policy_summary_dir(exp_dir))[0]
        scores = {p: read_scores(exp_dir, p, train_dir=train_dir) for p in policies}
        return cls(name=run_name(exp_dir), scores={p: s for p, s in scores.items() if s is not None},
                   scalars={t: _series(s.steps, s.values) for t, s in sorted(scalars.items()) if keep(t)},
                   config=read_config(exp_dir), trained_frames=trained_frames(exp_dir), source=exp_dir)

    @classmethod
    def from_json(cls, data: dict, source: str) -> "RunRecord":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format') if isinstance(data, dict) else None!r}, expected {FORMAT}")
        frames = data["trained_frames"]
        return cls(name=str(data["name"]), scores={str(p): dict(s) for p, s in data["scores"].items()},
                   scalars={t: _scalar_from_json(t, s) for t, s in data["scalars"].items()},
                   config=None if data["config"] is None else dict(data["config"]),
                   trained_frames=None if frames is None else int(frames), source=source)

    def to_json(self) -> dict:
        return dict(format=FORMAT, name=self.name, trained_frames=self.trained_frames, config=self.config,
                    scores=self.scores, scalars={t: dict(steps=[int(x) for x in s.steps], values=s.values.tolist())
                                                 for t, s in self.scalars.items()})

    def select(self, tags: Tags) -> "RunRecord":
        keep = tag_filter(tags)
        self.scalars = {t: s for t, s in self.scalars.items() if keep(t)}
        return self


def _lines(d: dict, value: Callable[[str, object], str]) -> str:
    """A JSON object with one line per key, sorted."""
    return "{\n" + ",\n".join(f"{json.dumps(k)}:{value(k, v)}" for k, v in sorted(d.items())) + "\n}"


def dumps(data: dict) -> str:
    """A record's JSON: sorted keys, one line per top-level key and per scalar tag."""
    def one(_, v):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))

    return _lines(data, lambda k, v: _lines(v, one) if k == "scalars" else one(k, v)) + "\n"


def save_record(exp_dir: str, path: str, tags: Tags, policies: Sequence[str] = POLICIES,
                train_dir: Optional[str] = None) -> RunRecord:
    """Write the record of an experiment dir to `path` (atomically) and return it."""
    record = RunRecord.from_dir(exp_dir, tags, policies, train_dir)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(dumps(record.to_json()))
    os.replace(tmp, path)
    return record


def load_record(path: str) -> Optional[RunRecord]:
    """The record at `path`; None when there is none; RecordError (naming the file) when it cannot be read."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return RunRecord.from_json(json.load(f), path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RecordError(f"run record {path}: unreadable ({type(exc).__name__}: {exc}); delete it to redo the "
                          "run, or restore it from git") from exc


def record_of(records_dir: str, exp_dir: str) -> Optional[RunRecord]:
    """The record saved for the run of `exp_dir` (named after its directory)."""
    return load_record(record_path(records_dir, run_name(exp_dir)))


def reached(exp_dir: str, records_dir: Optional[str], frames: float,
            on_dir: Optional[Callable[[str], Optional[int]]], on_record: Callable[[RunRecord], Optional[int]]) -> bool:
    """The one "is this run done?" rule of the benchmarks: a run has reached `frames` when what `on_dir` reads of its
    dir (when the dir is on this machine; None: the dir is not asked) or what `on_record` reads of its record in
    `records_dir` (None: no records) is at least `frames`."""
    record = record_of(records_dir, exp_dir) if records_dir else None
    values = (on_dir(exp_dir) if on_dir is not None and os.path.isdir(exp_dir) else None,
              on_record(record) if record is not None else None)
    return any(v is not None and v >= frames for v in values)


def open_run(exp_dir: str, records_dir: str, tags: Tags, name: Optional[str] = None, train_dir: Optional[str] = None,
             policies: Sequence[str] = POLICIES) -> Optional[RunRecord]:
    """A run as analysis reads it: its dir's view when `exp_dir` is on this machine, else its record's (the record
    `name`, by default the dir's name), else None."""
    if os.path.isdir(exp_dir):
        return RunRecord.from_dir(exp_dir, tags, policies, train_dir)
    record = load_record(record_path(records_dir, name or run_name(exp_dir)))
    return None if record is None else record.select(tags)
