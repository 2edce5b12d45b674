"""Reading experiments: tensorboard event files, config.json and sf_log.txt into `Experiment`s, and resolving each
experiment's `--teacher` to an experiment (the only disk access of the report besides writing its output)."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sf_kickstart.experiments import ExperimentError, find_experiment_dir, read_config

_START_MARK = "Saving configuration to"
_END_RE = re.compile(r"\]\s*Collected \{")
_EXPLOIT_RE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[\s*\d+\] Asking learner (\d+) to load model from (\d+)")
_SEED_RES = (re.compile(r"^(?P<m>.+)_seed_?(?P<s>\d+)$"), re.compile(r"^(?P<m>.+)_see_(?P<s>\d+)$"))
_SF_INDEX_RE = re.compile(r"^\d{2}_(?=.)")


@dataclass
class Series:
    steps: np.ndarray
    values: np.ndarray
    walls: np.ndarray

    def __len__(self):
        return len(self.steps)

    @property
    def last_step(self) -> float:
        return float(self.steps[-1])

    @property
    def first_step(self) -> float:
        return float(self.steps[0])


@dataclass(eq=False)
class Experiment:
    path: str
    name: str
    method: str
    seed: Optional[int]
    cfg: Dict
    status: str  # finished | unfinished | unknown
    policies: Dict[int, Dict[str, Series]] = field(default_factory=dict)
    exploits: List[Tuple[float, int, int]] = field(default_factory=list)  # (wall time, member, copied from)
    notes: List[str] = field(default_factory=list)
    teacher_experiment: Optional["Experiment"] = None  # its --teacher, resolved (resolve_teachers)

    @property
    def pbt(self) -> bool:
        if self.cfg:
            return bool(self.cfg.get("with_pbt")) and len(self.policies) > 1
        return len(self.policies) > 1

    @property
    def teacher(self) -> Optional[str]:
        return self.cfg.get("teacher") or None

    @property
    def teachers_map(self) -> Optional[str]:
        return self.cfg.get("teachers") or None

    @property
    def running(self) -> bool:
        return self.status == "unfinished"


@dataclass(eq=False)
class Unit:
    """One learning curve: a policy of an experiment (a seed, or a PBT member)."""

    exp: Experiment
    policy: int
    scalars: Dict[str, Series]

    @property
    def method(self) -> str:
        return self.exp.method

    @property
    def label(self) -> str:
        return f"{self.exp.name}/p{self.policy}" if len(self.exp.policies) > 1 else self.exp.name


def parse_experiment_name(name: str) -> Tuple[str, Optional[int]]:
    """'ks_const_l1_seed3' -> ('ks_const_l1', 3); SF launcher's '02_large_see_1' -> ('large', 1); 'teacher' -> ('teacher', None)."""
    for rx in _SEED_RES:
        m = rx.match(name)
        if m:
            return _SF_INDEX_RE.sub("", m.group("m")), int(m.group("s"))
    return _SF_INDEX_RE.sub("", name), None


def find_experiments(roots: Sequence[str]) -> List[str]:
    found: List[str] = []
    for root in roots:
        for dirpath, dirnames, _ in os.walk(root):
            if ".summary" in dirnames and os.path.isdir(os.path.join(dirpath, ".summary")):
                found.append(os.path.normpath(dirpath))
                dirnames[:] = []  # an experiment holds no experiments
                continue
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    seen, out = set(), []
    for p in found:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _event_file_order(path: str):
    m = re.search(r"tfevents\.(\d+)", os.path.basename(path))
    return (int(m.group(1)) if m else 0, path)


def read_scalars(summary_dir: str) -> Tuple[Dict[str, Series], List[str]]:
    """All scalars of one policy's summary dir: tag -> Series, plus notes about unreadable files."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.util import tensor_util

    notes: List[str] = []
    raw: Dict[str, List[Tuple[float, float, float]]] = {}
    files = sorted(glob.glob(os.path.join(summary_dir, "events.out.tfevents.*")), key=_event_file_order)
    for path in files:
        n_before = sum(len(v) for v in raw.values())
        try:
            for event in LegacyEventFileLoader(path).Load():
                if not event.HasField("summary"):
                    continue
                for v in event.summary.value:
                    kind = v.WhichOneof("value")
                    if kind == "simple_value":
                        val = float(v.simple_value)
                    elif kind == "tensor":
                        try:
                            arr = tensor_util.make_ndarray(v.tensor)
                        except Exception:  # noqa: BLE001 - a non-numeric tensor is not a scalar
                            continue
                        if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
                            continue
                        val = float(arr.reshape(-1)[0])
                    else:
                        continue
                    pts = raw.setdefault(v.tag, [])
                    step = float(event.step)
                    if pts and step < pts[-1][0]:
                        # restart from an earlier checkpoint: later points are orphaned (tensorboard's purge)
                        while pts and pts[-1][0] >= step:
                            pts.pop()
                    pts.append((step, val, float(event.wall_time)))
        except Exception as exc:  # noqa: BLE001 - a corrupt file must not stop the report
            notes.append(f"{path}: unreadable event file ({type(exc).__name__}: {exc}); points read before: kept")
        if sum(len(v) for v in raw.values()) == n_before and os.path.getsize(path) > 0:
            notes.append(f"{path}: no scalar summaries could be read")
    out = {}
    for tag, pts in raw.items():
        a = np.asarray(pts, dtype=np.float64)
        out[tag] = Series(a[:, 0], a[:, 1], a[:, 2])
    return out, notes


def run_status(exp_dir: str) -> Tuple[str, List[Tuple[float, int, int]], Optional[str]]:
    """(status, PBT exploit events, note) from sf_log.txt."""
    path = os.path.join(exp_dir, "sf_log.txt")
    if not os.path.isfile(path):
        return "unknown", [], "no sf_log.txt: cannot tell whether it finished (counted as finished)"
    last_start = last_end = -1
    exploits = []
    with open(path, errors="replace") as f:
        for i, line in enumerate(f):
            if _START_MARK in line:
                last_start = i
            elif "Collected {" in line and _END_RE.search(line):
                last_end = i
            elif "Asking learner" in line:
                m = _EXPLOIT_RE.match(line)
                if m:
                    t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    exploits.append((t, int(m.group(2)), int(m.group(3))))
    if last_end > last_start:
        return "finished", exploits, None
    return (
        "unfinished",
        exploits,
        "unfinished: sf_log.txt has no final 'Collected {...}' line after its last start (still running, or killed)",
    )


def load_experiment(path: str) -> Experiment:
    name = os.path.basename(os.path.normpath(path))
    notes: List[str] = []
    try:
        cfg = read_config(path) or {}
    except ExperimentError as exc:
        notes.append(f"config.json unreadable ({exc}): method/seed from the directory name only")
        cfg = {}
    method, seed = parse_experiment_name(name)
    if isinstance(cfg.get("seed"), int):
        seed = cfg["seed"]
    status, exploits, note = run_status(path)
    if note:
        notes.append(note)
    exp = Experiment(path=path, name=name, method=method, seed=seed, cfg=cfg, status=status, exploits=exploits, notes=notes)
    summary = os.path.join(path, ".summary")
    for d in sorted(os.listdir(summary)):
        if not d.isdigit() or not os.path.isdir(os.path.join(summary, d)):
            continue
        scalars, file_notes = read_scalars(os.path.join(summary, d))
        exp.notes.extend(file_notes)
        if not glob.glob(os.path.join(summary, d, "events.out.tfevents.*")):
            exp.notes.append(f"policy {d}: no event files")
        exp.policies[int(d)] = scalars
    if not exp.policies:
        exp.notes.append("no .summary/<policy_id>/ directory")
    return exp


def load_experiments(roots: Sequence[str]) -> List[Experiment]:
    """Every experiment under the roots, with its teacher resolved. A Ray Tune population (sf_kickstart.tune) is one
    PBT experiment whose policies are its members; its member dirs are not experiments of their own."""
    from sf_kickstart.populations.tune.population import load_populations

    experiments, member_dirs = load_populations(roots)
    experiments += [load_experiment(p) for p in find_experiments(roots) if os.path.realpath(p) not in member_dirs]
    resolve_teachers(experiments)
    return experiments


def resolve_teachers(experiments: List[Experiment]) -> None:
    """Set each experiment's `teacher_experiment`: its `teacher` resolved as sf_kickstart.train does (as given, then
    under the run's train_dir; loaded when outside the experiments read), else by name among the experiments read."""
    by_path = {os.path.realpath(e.path): e for e in experiments}
    by_name: Dict[str, List[Experiment]] = {}
    for e in experiments:
        by_name.setdefault(e.name, []).append(e)
    for e in experiments:
        if not e.teacher:
            continue
        found = find_experiment_dir(e.teacher, e.cfg.get("train_dir"))
        key = os.path.realpath(found) if found else None
        if key is not None and key not in by_path and os.path.isdir(os.path.join(found, ".summary")):
            by_path[key] = load_experiment(found)
        if key is not None and key in by_path:
            e.teacher_experiment = by_path[key]
            continue
        same = by_name.get(os.path.basename(os.path.normpath(e.teacher)), [])
        e.teacher_experiment = same[0] if len(same) == 1 else None


