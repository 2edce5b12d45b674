"""Reads a Ray Tune population (written by `python -m sf_kickstart.tune`) as one PBT experiment for the report.

A population dir (`populations.tune.layout`) holds `tune_population.json`, one Sample Factory experiment per member
(`member_NN/`), Tune's trial dirs (`trial_NN/progress.csv`) and Tune's PBT log (`pbt_global.txt`: one JSON line per
exploit, [member tag, source tag, member iteration, source iteration, source config, new config]; a tag starts with
the trial's index). It becomes one report Experiment whose policies are the members, exactly like an in-process PBT
run whose policies are its members: per-member curves, top-k mean, λ per member. Each exploit becomes a
`kickstart/pbt_exploit_from` point of the receiving member (step: the frames it continued from; value: the source
member), the tag sf_kickstart.pbt writes, so the report draws the same exploit arrows.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Dict, List, Sequence, Set, Tuple

import numpy as np

from sf_kickstart import tags
from sf_kickstart.events import Series, policy_summary_dir, read_scalars
from sf_kickstart.experiments import ExperimentError, find_dirs, read_config
from sf_kickstart.populations.tune.layout import PBT_LOG, POPULATION_MARKER, trial_name
from sf_kickstart.report.model import Experiment, parse_experiment_name


def find_populations(roots: Sequence[str]) -> List[str]:
    return find_dirs(roots, lambda _, __, filenames: POPULATION_MARKER in filenames)


def _restarts_from_others(progress_csv: str, member: int) -> List[Tuple[float, int]]:
    """(frames it continued from, source member) for each result of the member that started from another member's
    checkpoint (sf_kickstart.tune.trial reports `started_from` and the interval's frames with every result)."""
    out: List[Tuple[float, int]] = []
    if os.path.isfile(progress_csv):
        with open(progress_csv, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("started_from") not in (None, "") and int(row["started_from"]) != member:
                    out.append((float(row["env_steps"]) - float(row["interval_frames"]), int(row["started_from"])))
    return out


def exploit_events(root: str) -> Tuple[List[Tuple[float, int, int]], List[str]]:
    """(frames the member continued from, member, source member) for each line of Tune's PBT log. The log says who
    copied whom, in order; its iteration columns are not reliable under synchronous PBT (a paused trial's last result
    is reset), so the frames come from the member's k-th result that started from another member's checkpoint."""
    events, notes = [], []
    path = os.path.join(root, PBT_LOG)
    if not os.path.isfile(path):
        return events, notes
    seen: Dict[int, int] = {}
    restarts: Dict[int, List[Tuple[float, int]]] = {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            tag, source_tag = json.loads(line)[:2]
            member, source = int(str(tag).split("_")[0]), int(str(source_tag).split("_")[0])
            if member not in restarts:
                restarts[member] = _restarts_from_others(os.path.join(root, trial_name(member), "progress.csv"), member)
            k = seen[member] = seen.get(member, -1) + 1
            if k < len(restarts[member]) and restarts[member][k][1] == source:
                events.append((restarts[member][k][0], member, source))
            else:
                notes.append(f"{PBT_LOG}: member {member} <- {source} (exploit {k + 1} of the member): no result of the "
                             f"member after it in trial_{member:02d}/progress.csv (arrow left out)")
    return sorted(events), notes


def load_population(root: str) -> Experiment:
    with open(os.path.join(root, POPULATION_MARKER)) as f:
        marker = json.load(f)
    name = os.path.basename(os.path.normpath(root))
    method, seed = parse_experiment_name(name)
    notes: List[str] = []
    try:
        cfg: Dict = read_config(os.path.join(root, marker["members"][0])) or {}
    except ExperimentError as exc:
        notes.append(f"{marker['members'][0]}: config.json unreadable ({exc})")
        cfg = {}
    cfg.update(with_pbt=True, num_policies=len(marker["members"]), train_for_env_steps=marker["total_frames"],
               experiment=name)
    status = "finished" if marker.get("status") == "finished" else "unfinished"
    exp = Experiment(path=root, name=name, method=method, seed=seed if seed is not None else cfg.get("seed"), cfg=cfg,
                     status=status, notes=notes)
    if status != "finished":
        exp.notes.append(f"Tune population status: {marker.get('status')}")
    for i, member in enumerate(marker["members"]):
        summary = policy_summary_dir(os.path.join(root, member))
        if os.path.isdir(summary):
            exp.policies[i], file_notes = read_scalars(summary)
            exp.notes.extend(file_notes)
        else:
            exp.notes.append(f"{member}: no summaries yet")
    events, notes = exploit_events(root)
    exp.notes.extend(notes)
    for member in sorted({m for _, m, _ in events}):
        pts = [(frames, source) for frames, m, source in events if m == member]
        steps, values = np.array([p[0] for p in pts]), np.array([float(p[1]) for p in pts])
        exp.policies.setdefault(member, {})[tags.EXPLOIT] = Series(steps, values, np.zeros(len(pts)))
    return exp


def load_populations(roots: Sequence[str]) -> Tuple[List[Experiment], Set[str]]:
    """The populations under `roots`, and the real paths of their member dirs (not separate experiments)."""
    populations, members = [], set()
    for root in find_populations(roots):
        exp = load_population(root)
        populations.append(exp)
        with open(os.path.join(root, POPULATION_MARKER)) as f:
            members |= {os.path.realpath(os.path.join(root, m)) for m in json.load(f)["members"]}
    return populations, members
