"""Reading experiments: Sample Factory experiment dirs (tensorboard event files through `sf_kickstart.events`,
config.json, sf_log.txt) and Ray Tune populations (`report.population`) into `Experiment`s, and resolving each
experiment's `--teacher` to an experiment (the only disk access of the report besides writing its output)."""

from __future__ import annotations

import glob
import os
import re
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple

from sf_kickstart.events import read_scalars
from sf_kickstart.experiments import ExperimentError, find_dirs, find_experiment_dir, read_config
from sf_kickstart.report.model import Experiment, parse_experiment_name
from sf_kickstart.report.population import load_populations

_START_MARK = "Saving configuration to"
_END_RE = re.compile(r"\]\s*Collected \{")
_EXPLOIT_RE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[\s*\d+\] Asking learner (\d+) to load model from (\d+)")


def find_experiments(roots: Sequence[str]) -> List[str]:
    """Every dir under the roots that holds `.summary/` (an experiment holds no experiments), each real dir once."""
    def holds_summaries(dirpath: str, dirnames: List[str], _) -> bool:
        return ".summary" in dirnames and os.path.isdir(os.path.join(dirpath, ".summary"))

    return find_dirs(roots, holds_summaries)


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


