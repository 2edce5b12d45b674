"""python -m sf_kickstart.report TRAIN_DIR [TRAIN_DIR ...] [--out DIR] [options]

Paper-style tables (Schmitt et al. 2018, Tables 1-3) and PNG plots (Figure 2) from the tensorboard event files of
Sample Factory experiments. Typical use, after the two launcher stages (see launchers/):

    python -m sf_kickstart.report train_dir/minigrid_teachers train_dir/minigrid_ablation --out report

What it reads
-------------
Every directory under the TRAIN_DIRs (searched recursively, hidden dirs skipped) that holds `.summary/` is one
experiment: `<experiment>/.summary/<policy_id>/events.out.tfevents.*` (all event files of a policy are merged, a
step that goes back after a restart drops the later points, as tensorboard does), plus its `config.json` and
`sf_log.txt` when present.

* Method and seed: the method is the experiment name without a `_seed<N>` suffix (the launchers' naming) — also
  understood: Sample Factory's launcher naming `NN_<name>_see_<N>` and `_seed_<N>`. The seed is `config.json`'s
  `seed`, else the `<N>` of the suffix. Experiments with the same method are the seeds of that method.
* Population Based Training: an experiment with `with_pbt` (or, without config.json, several policy dirs) is a
  population; each policy is a member. A PBT method is summarised by its top `--pbt_top` (3) members by final score
  in each population (the paper's convention), every other experiment by its policies (normally one).
* Score metric (`--metric`): `suite/score` (the capped mean normalised suite score) when any run has it, else Sample
  Factory's `reward/reward`. Runs without the metric are listed and left out of the score tables.
* `suite/score` (and `suite/mean_normalized`) average only the tasks that have finished an episode so far, so a
  run's early points over-weight the short, easy tasks; where `suite/tasks_seen` is logged, the points before it
  reaches its final value are dropped (a run too short for every task to report has no score).
* Teacher: `config.json`'s `teacher` is resolved like sf_kickstart.train does (as given, then under the run's
  train_dir, then by experiment name among the experiments read); its *final score* on the same metric is the
  threshold "teacher's final score". A teacher trained on a different env than the student (scores on different
  task sets), or a multi-teacher map (`--teachers`), gives no teacher threshold for that method.
* Run status, from `sf_log.txt`: Sample Factory logs `Saving configuration to ...` when a run (re)starts and
  `Collected {...}, FPS: ...` when its main loop ends. A run whose last start is not followed by a `Collected` line
  is *unfinished* (still running, or killed/crashed). Unfinished runs are included and flagged with `*` (their
  "final" score is their latest); `--exclude_running` leaves them out. Without `sf_log.txt` the status is unknown
  and the run counts as finished.

Numbers (all computed from logged points; no smoothing beyond what the metric already averages)
----------------------------------------------------------------------------------------------
* value of a run at frame F: its last logged value at a step <= F; a run *covers* F when its last step is
  >= F - max(2% of B, two of its logging intervals) (Sample Factory logs summaries every few seconds, so the last
  point of a finished run lags its final frame a little). B, the reference frames, is `--frames`, else the largest
  `train_for_env_steps` of the runs in the tables (config.json), else their largest last step.
* final score of a run: mean of its values over the last `--final_window` (5%) of its frames.
* mean curve of a method: at every logged step of any of its runs where all its runs have data (from the latest first
  step to the earliest last step), the mean of the runs' values at that step; the band is min..max over runs.
* Table 1, score at frame budgets: mean ± std over the runs that cover F = fraction × B (`--budgets`,
  default 0.1, 0.25, 0.5, 1); `(k/n)` when only k of n runs cover it.
* Table 2, frames to reach a score: the first step of the method's mean curve at which it is >= the threshold
  (`-` when never; `k/n` runs reached it on their own). Thresholds: the teacher's final score, the baseline's final
  score and `--thresholds`. Speedup = baseline frames / method frames; when only one of them reached the threshold
  the ratio with the other's last frame is a bound (`≥`, `≤`).
* Table 3, final score: mean ± std of the runs' final scores and the improvement over the baseline,
  100 · (method − baseline) / |baseline| %.
* Baseline (`--baseline`): `large_scratch` when present, else the only method without a teacher whose name contains
  `scratch`.
* Kickstarting diagnostics: final values of `kickstart/lambda`, `alpha`, `kl_teacher_student`, `action_agreement`,
  `teacher_entropy`, `loss`; per-task final normalised scores from `suite/<Task>_normalized`.

Plots
-----
`learning_curves.png` (mean curve ± min..max band per method, the teacher's final score as a dashed line and a marker
where the method's mean curve first reaches its teacher's final score), `lambda.png` (`kickstart/lambda` over
frames per method, the paper's Figure 2 bottom), `lambda_tasks.png` (per-task λ_i heat map over frames from
`kickstart/lambda_<task>`: the `kickstart/lambda_<X>` tags with no matching `kickstart/rho_<X>`, which are the
teachers' own), `pbt_lambda.png` (λ of every member of each population over frames — `kickstart/lambda`, else
Sample Factory's `zz_pbt/cfg_kickstart_lambda` — with exploit events drawn as arrows from the source's λ to the
member's: the `kickstart/pbt_exploit_from` summaries of sf_kickstart.pbt, else Sample Factory's
`Asking learner <i> to load model from <j>` lines in sf_log.txt, mapped to frames through the event wall times).

Bad input
---------
A TRAIN_DIR that does not exist: exit 2. No experiment found, or no run has the metric nor any `kickstart/*` tag:
exit 1 with the reason (and the tags that do exist). Anything less (a corrupt event file, a run without the
metric, a missing baseline or teacher, unfinished runs) is a note in the report and on stderr, with partial tables.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import math
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

SCORE_METRICS = ("suite/score", "reward/reward")
LAMBDA_TAG = "kickstart/lambda"
TASKS_SEEN_TAG = "suite/tasks_seen"
EXPLOIT_TAG = "kickstart/pbt_exploit_from"  # written by sf_kickstart.pbt at every exploit
SUITE_AGGREGATES = ("suite/score", "suite/mean_normalized")
PBT_LAMBDA_TAG = "zz_pbt/cfg_kickstart_lambda"  # Sample Factory's PBT summary of a mutated cfg value
KS_DIAGNOSTICS = ("lambda", "alpha", "kl_teacher_student", "action_agreement", "teacher_entropy", "loss")
BASELINE_DEFAULT = "large_scratch"
COVER_TOL = 0.02

_START_MARK = "Saving configuration to"
_END_RE = re.compile(r"\]\s*Collected \{")
_EXPLOIT_RE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[\s*\d+\] Asking learner (\d+) to load model from (\d+)")
_SEED_RES = (re.compile(r"^(?P<m>.+)_seed_?(?P<s>\d+)$"), re.compile(r"^(?P<m>.+)_see_(?P<s>\d+)$"))
_SF_INDEX_RE = re.compile(r"^\d{2}_(?=.)")


class ReportError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------------------------------
# reading


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
    cfg: Dict = {}
    cfg_path = os.path.join(path, "config.json")
    if os.path.isfile(cfg_path):
        try:
            with open(cfg_path) as f:
                cfg = json.load(f)
            if not isinstance(cfg, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as exc:
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
    return [load_experiment(p) for p in find_experiments(roots)]


# ---------------------------------------------------------------------------------------------------------------------
# numbers


def value_at(s: Series, frames: float, tol: float = 0.0) -> Optional[float]:
    """Last logged value at a step <= frames; None if the run has no point there or ends before frames - tol."""
    if len(s) == 0 or s.last_step < frames - tol:
        return None
    idx = int(np.searchsorted(s.steps, frames, side="right")) - 1
    if idx < 0:
        return None
    return float(s.values[idx])


def final_score(s: Series, window: float = 0.05) -> float:
    mask = s.steps >= s.last_step * (1.0 - window)
    if not mask.any():
        mask[-1] = True
    return float(np.mean(s.values[mask]))


@dataclass
class Curve:
    steps: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @property
    def last_step(self) -> Optional[float]:
        return float(self.steps[-1]) if len(self.steps) else None

    def first_reach(self, threshold: float) -> Optional[float]:
        idx = np.nonzero(self.mean >= threshold)[0]
        return float(self.steps[idx[0]]) if len(idx) else None

    def at(self, frames: float) -> Optional[float]:
        idx = int(np.searchsorted(self.steps, frames, side="right")) - 1
        return float(self.mean[idx]) if idx >= 0 else None


def mean_curve(series: Sequence[Series]) -> Curve:
    series = [s for s in series if len(s)]
    if not series:
        e = np.zeros(0)
        return Curve(e, e, e, e)
    start = max(s.first_step for s in series)
    end = min(s.last_step for s in series)
    grid = np.unique(np.concatenate([s.steps for s in series]))
    grid = grid[(grid >= start) & (grid <= end)]
    vals = np.stack([s.values[np.searchsorted(s.steps, grid, side="right") - 1] for s in series]) if len(grid) else None
    if vals is None:
        e = np.zeros(0)
        return Curve(e, e, e, e)
    return Curve(grid, vals.mean(axis=0), vals.min(axis=0), vals.max(axis=0))


def grid_values(series: Sequence[Series], grid: np.ndarray) -> np.ndarray:
    """Step-function values of each series on grid (NaN before a series' first point or after its last)."""
    out = np.full((len(series), len(grid)), np.nan)
    for i, s in enumerate(series):
        if not len(s):
            continue
        idx = np.searchsorted(s.steps, grid, side="right") - 1
        ok = (idx >= 0) & (grid <= s.last_step)
        out[i, ok] = s.values[idx[ok]]
    return out


@dataclass
class Stat:
    mean: Optional[float]
    std: Optional[float]
    n: int  # runs with a value
    total: int  # runs of the method

    @staticmethod
    def of(values: Sequence[Optional[float]]) -> "Stat":
        vals = [v for v in values if v is not None and math.isfinite(v)]
        if not vals:
            return Stat(None, None, 0, len(values))
        return Stat(float(np.mean(vals)), float(np.std(vals)), len(vals), len(values))


@dataclass
class Reach:
    frames: Optional[float]  # first step of the mean curve >= threshold
    last: Optional[float]  # last step of the mean curve (the bound when not reached)
    runs_reached: int
    runs: int
    threshold: Optional[float]


@dataclass
class Speedup:
    value: Optional[float]
    bound: str = ""  # "", ">=" or "<="

    def text(self) -> str:
        if self.value is None:
            return "-"
        if math.isinf(self.value):
            return "∞ (reached at the start)"
        sign = {"": "", ">=": "≥ ", "<=": "≤ "}[self.bound]
        return f"{sign}{self.value:.2f}×"


def speedup(method: Reach, baseline: Reach) -> Speedup:
    if method.frames is not None and baseline.frames is not None:
        if method.frames == 0:
            return Speedup(1.0 if baseline.frames == 0 else math.inf)
        return Speedup(baseline.frames / method.frames)
    if method.frames is not None and baseline.last:
        return Speedup(baseline.last / method.frames if method.frames > 0 else math.inf, ">=")
    if baseline.frames is not None and method.last:
        return Speedup(baseline.frames / method.last, "<=")
    return Speedup(None)


# ---------------------------------------------------------------------------------------------------------------------
# analysis


@dataclass
class Options:
    metric: Optional[str] = None
    budgets: Tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    frames: Optional[float] = None
    thresholds: Tuple[float, ...] = ()
    baseline: Optional[str] = None
    teacher_score: Optional[float] = None
    pbt_top: int = 3
    final_window: float = 0.05
    exclude_running: bool = False
    methods: Tuple[str, ...] = ()


@dataclass
class Threshold:
    key: str
    title: str
    common: Optional[float]  # one value for every method, or None when per method (the teacher's)
    per_method: Dict[str, Optional[float]] = field(default_factory=dict)

    def value_for(self, method: str) -> Optional[float]:
        return self.per_method.get(method, self.common) if self.per_method else self.common


@dataclass
class Analysis:
    metric: Optional[str]
    options: Options
    experiments: List[Experiment]
    methods: List[str]
    units: Dict[str, List[Unit]]  # method -> units in the score tables (PBT: top-k members)
    all_units: Dict[str, List[Unit]]  # method -> every unit (PBT: every member)
    ref_frames: Optional[float]
    curves: Dict[str, Curve]
    budget_frames: List[float]
    table_budgets: Dict[str, List[Stat]]
    thresholds: List[Threshold]
    table_reach: Dict[str, Dict[str, Reach]]
    table_speedup: Dict[str, Dict[str, Speedup]]
    finals: Dict[str, Stat]
    improvement: Dict[str, Optional[float]]
    baseline: Optional[str]
    teachers: Dict[str, Tuple[str, Optional[float]]]  # method -> (teacher name, its final score)
    surpass: Dict[str, Optional[float]]  # method -> frames where its mean curve reaches its teacher's final score
    diagnostics: Dict[str, Dict[str, Optional[float]]]
    task_scores: Dict[str, Dict[str, Optional[float]]]
    tasks: List[str]
    lambda_tasks: Dict[str, List[str]]  # method -> per-task λ tags' task names
    pbt: List[Experiment]
    notes: List[str]

    def method_running(self, method: str) -> bool:
        return any(u.exp.running for u in self.all_units.get(method, []))


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _resolve_teacher(exp: Experiment, by_path: Dict[str, Experiment], by_name: Dict[str, List[Experiment]]) -> Optional[Experiment]:
    raw = exp.teacher
    if not raw:
        return None
    candidates = [raw]
    if not os.path.isabs(raw) and exp.cfg.get("train_dir"):
        candidates.append(os.path.join(exp.cfg["train_dir"], raw))
    for c in candidates:
        if os.path.isdir(c):
            key = os.path.realpath(c)
            if key in by_path:
                return by_path[key]
            if os.path.isdir(os.path.join(c, ".summary")):
                t = load_experiment(c)
                by_path[key] = t
                return t
    same = by_name.get(os.path.basename(os.path.normpath(raw)), [])
    return same[0] if len(same) == 1 else None


def _teacher_unit(t: Experiment, metric: Optional[str]) -> Optional[Unit]:
    """A `--teacher` is policy 0 of its experiment (sf_kickstart.teachers.TeacherSpec)."""
    return Unit(t, 0, comparable_scalars(t.policies[0], metric)) if 0 in t.policies else None


def comparable_scalars(scalars: Dict[str, Series], metric: Optional[str]) -> Dict[str, Series]:
    """Drop the suite-aggregate metric's points logged before every task had reported.

    The suite score averages the tasks that have finished an episode so far (the short, easy ones first), so its
    early points are not comparable with later ones, nor between runs. With `suite/tasks_seen` logged, only the
    points where it has reached its final value are kept."""
    if metric not in SUITE_AGGREGATES or metric not in scalars or TASKS_SEEN_TAG not in scalars:
        return scalars
    s, seen = scalars[metric], scalars[TASKS_SEEN_TAG]
    if not len(s) or not len(seen):
        return scalars
    full = seen.values[-1]
    idx = np.searchsorted(seen.steps, s.steps, side="right") - 1
    ok = (idx >= 0) & (seen.values[np.clip(idx, 0, None)] >= full)
    return {**scalars, metric: Series(s.steps[ok], s.values[ok], s.walls[ok])}


def _suite_order(tasks: List[str], envs: Iterable[Optional[str]]) -> List[str]:
    """tasks in their suite's task-id order when the suite is known (else as first seen), unknown ones last."""
    for env in dict.fromkeys(e for e in envs if e):
        try:
            from sf_kickstart.suites.registry import default_task_names

            order = list(default_task_names(env))
        except Exception:  # noqa: BLE001 - an env this installation cannot resolve: keep the order as seen
            continue
        if any(t in order for t in tasks):
            return [t for t in order if t in tasks] + [t for t in tasks if t not in order]
    return list(tasks)


def choose_metric(units: Iterable[Unit], requested: Optional[str]) -> Optional[str]:
    units = list(units)
    if requested:
        return requested
    for m in SCORE_METRICS:
        if any(m in u.scalars and len(u.scalars[m]) for u in units):
            return m
    return None


def analyse(experiments: List[Experiment], opts: Options) -> Analysis:
    notes: List[str] = []
    for e in experiments:
        for n in e.notes:
            notes.append(f"`{e.name}`: {n}")

    by_path = {os.path.realpath(e.path): e for e in experiments}
    by_name: Dict[str, List[Experiment]] = {}
    for e in experiments:
        by_name.setdefault(e.name, []).append(e)

    selected = experiments
    if opts.methods:
        selected = [e for e in experiments if any(fnmatch.fnmatch(e.method, pat) for pat in opts.methods)]
    if opts.exclude_running:
        dropped = [e.name for e in selected if e.running]
        if dropped:
            notes.append(f"left out as unfinished (--exclude_running): {', '.join(dropped)}")
        selected = [e for e in selected if not e.running]

    all_units: Dict[str, List[Unit]] = {}
    for e in selected:
        for pid, scalars in sorted(e.policies.items()):
            all_units.setdefault(e.method, []).append(Unit(e, pid, scalars))

    metric = choose_metric([u for us in all_units.values() for u in us], opts.metric)
    if metric is None:
        notes.append(f"none of the runs has a score metric ({', '.join(SCORE_METRICS)}): no score tables")
    for us in all_units.values():
        for u in us:
            u.scalars = comparable_scalars(u.scalars, metric)

    def has_metric(u: Unit) -> bool:
        return metric is not None and metric in u.scalars and len(u.scalars[metric]) > 0

    # units in the score tables: runs with the metric; PBT populations: top-k members by final score
    units: Dict[str, List[Unit]] = {}
    for method, us in all_units.items():
        missing = [u.label for u in us if not has_metric(u)]
        if missing and metric is not None:
            notes.append(f"method `{method}`: no `{metric}` in {', '.join(missing)} (left out of the score tables)")
        keep: List[Unit] = []
        for exp in dict.fromkeys(u.exp for u in us):
            members = [u for u in us if u.exp is exp and has_metric(u)]
            if exp.pbt and len(members) > opts.pbt_top:
                members = sorted(members, key=lambda u: final_score(u.scalars[metric], opts.final_window), reverse=True)
                members = members[: opts.pbt_top]
                notes.append(
                    f"`{exp.name}` (PBT, {len(exp.policies)} members): tables use the top {opts.pbt_top} by final "
                    f"score: {', '.join('p%d' % u.policy for u in members)}"
                )
            keep.extend(members)
        if keep:
            units[method] = keep

    # baseline
    baseline = opts.baseline
    if baseline is not None and baseline not in units:
        notes.append(f"--baseline={baseline}: no such method with `{metric}` (have: {', '.join(sorted(units)) or 'none'})")
        baseline = None
    if opts.baseline is None:
        if BASELINE_DEFAULT in units:
            baseline = BASELINE_DEFAULT
        else:
            cands = [m for m in units if "scratch" in m and not any(u.exp.teacher or u.exp.teachers_map for u in units[m])]
            baseline = cands[0] if len(cands) == 1 else None
        if baseline is None and units:
            notes.append("no baseline method (`large_scratch`, or pass --baseline METHOD): no speedups or improvements")

    # method order: baseline, methods without a teacher, kickstarted ones; natural order inside each
    def order(m: str):
        us = all_units.get(m, [])
        kick = any(u.exp.teacher or u.exp.teachers_map for u in us)
        return (m != baseline, kick, _natural_key(m))

    methods = sorted(all_units, key=order)

    # teachers and their final scores
    teachers: Dict[str, Tuple[str, Optional[float]]] = {}
    for m in methods:
        exps = list(dict.fromkeys(u.exp for u in all_units[m]))
        if any(e.teachers_map for e in exps):
            notes.append(f"method `{m}` uses a multi-teacher map (--teachers): no single teacher score")
            continue
        raws = {e.teacher for e in exps if e.teacher}
        if not raws:
            continue
        resolved = [_resolve_teacher(e, by_path, by_name) for e in exps if e.teacher]
        if opts.teacher_score is not None:
            teachers[m] = ("--teacher_score", opts.teacher_score)
            continue
        if any(t is None for t in resolved):
            notes.append(f"method `{m}`: teacher {sorted(raws)} not found (no teacher score)")
            continue
        names = {t.name for t in resolved}
        if len({os.path.realpath(t.path) for t in resolved}) > 1:
            notes.append(f"method `{m}`: its seeds have different teachers {sorted(names)} (no teacher score)")
            continue
        t = resolved[0]
        tu = _teacher_unit(t, metric)
        student_env = exps[0].cfg.get("env")
        if t.cfg.get("env") and student_env and t.cfg.get("env") != student_env:
            notes.append(
                f"method `{m}`: teacher `{t.name}` was trained on {t.cfg.get('env')}, the student on {student_env}: "
                f"scores not comparable (no teacher threshold)"
            )
            continue
        if tu is None or metric is None or metric not in tu.scalars or not len(tu.scalars[metric]):
            notes.append(f"method `{m}`: teacher `{t.name}` has no `{metric}` (no teacher score)")
            continue
        if t.running:
            notes.append(f"teacher `{t.name}` is unfinished: its 'final' score is its latest")
        teachers[m] = (t.name, final_score(tu.scalars[metric], opts.final_window))

    # curves and reference frames
    curves = {m: mean_curve([u.scalars[metric] for u in units[m]]) for m in units} if metric else {}
    ref = opts.frames
    if ref is None and units:
        targets = [u.exp.cfg.get("train_for_env_steps") for us in units.values() for u in us]
        targets = [float(t) for t in targets if isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0]
        ref = max(targets) if targets else max(u.scalars[metric].last_step for us in units.values() for u in us)
    budget_frames = [f * ref for f in opts.budgets] if ref else []
    tol = COVER_TOL * ref if ref else 0.0

    def tol_for(s: Series) -> float:
        gaps = np.diff(s.steps)
        return max(tol, 2.0 * float(np.median(gaps))) if len(gaps) else tol

    table_budgets = {
        m: [Stat.of([value_at(u.scalars[metric], F, tol_for(u.scalars[metric])) for u in units[m]]) for F in budget_frames]
        for m in units
    }
    finals = {m: Stat.of([final_score(u.scalars[metric], opts.final_window) for u in units[m]]) for m in units}
    improvement: Dict[str, Optional[float]] = {}
    for m in units:
        b = finals.get(baseline) if baseline else None
        if b is None or b.mean is None or finals[m].mean is None or b.mean == 0:
            improvement[m] = None
        else:
            improvement[m] = 100.0 * (finals[m].mean - b.mean) / abs(b.mean)

    # thresholds
    thresholds: List[Threshold] = []
    tvals = {m: s for m, (_, s) in teachers.items() if s is not None}
    if tvals:
        distinct = set(round(v, 12) for v in tvals.values())
        if len(distinct) == 1:
            v = next(iter(tvals.values()))
            thresholds.append(Threshold("teacher", f"teacher's final score ({_num(v)})", v))
        else:
            thresholds.append(Threshold("teacher", "its teacher's final score", None, dict(tvals)))
    if baseline and finals.get(baseline) and finals[baseline].mean is not None:
        v = finals[baseline].mean
        if not any(th.common is not None and math.isclose(th.common, v) for th in thresholds):
            thresholds.append(Threshold("baseline", f"baseline's final score ({_num(v)})", v))
    for v in opts.thresholds:
        thresholds.append(Threshold(f"score {v:g}", f"score {_num(v)}", float(v)))

    def reach(m: str, thr: Optional[float]) -> Reach:
        c = curves.get(m)
        if thr is None or c is None:
            return Reach(None, None, 0, len(units.get(m, [])), thr)
        k = sum(1 for u in units[m] if np.any(u.scalars[metric].values >= thr))
        return Reach(c.first_reach(thr), c.last_step, k, len(units[m]), thr)

    table_reach: Dict[str, Dict[str, Reach]] = {m: {} for m in units}
    table_speedup: Dict[str, Dict[str, Speedup]] = {m: {} for m in units}
    for th in thresholds:
        for m in units:
            v = th.value_for(m)
            r = reach(m, v)
            table_reach[m][th.key] = r
            if baseline and v is not None:
                table_speedup[m][th.key] = speedup(r, reach(baseline, v))
            else:
                table_speedup[m][th.key] = Speedup(None)

    surpass = {m: reach(m, teachers[m][1]).frames for m in units if m in teachers}

    # kickstart diagnostics and per-task scores (final values, mean over the table units; all units without metric)
    def unit_pool(m: str) -> List[Unit]:
        return units.get(m) or all_units.get(m, [])

    def final_means(tag_of: Dict[str, str]) -> Dict[str, Dict[str, Optional[float]]]:
        """{method: {column: mean final value of tag_of[column] over the method's units}} (methods with no data left out)."""
        table = {}
        for m in methods:
            row = {}
            for col, tag in tag_of.items():
                vals = [final_score(u.scalars[tag], opts.final_window) for u in unit_pool(m) if tag in u.scalars and len(u.scalars[tag])]
                row[col] = float(np.mean(vals)) if vals else None
            if any(v is not None for v in row.values()):
                table[m] = row
        return table

    diagnostics = final_means({k: f"kickstart/{k}" for k in KS_DIAGNOSTICS})

    tasks: List[str] = []
    for m in methods:
        for u in unit_pool(m):
            for tag in u.scalars:
                if tag.startswith("suite/") and tag.endswith("_normalized") and tag != "suite/mean_normalized":
                    t = tag[len("suite/") : -len("_normalized")]
                    if t not in tasks:
                        tasks.append(t)
    tasks = _suite_order(tasks, [e.cfg.get("env") for e in selected])
    task_scores = final_means({t: f"suite/{t}_normalized" for t in tasks})

    lambda_tasks: Dict[str, List[str]] = {}
    for m in methods:
        names: List[str] = []
        for u in all_units[m]:
            teachers_here = {t[len("kickstart/rho_") :] for t in u.scalars if t.startswith("kickstart/rho_")}
            for tag in u.scalars:
                if tag.startswith("kickstart/lambda_"):
                    x = tag[len("kickstart/lambda_") :]
                    if x not in teachers_here and x not in names:
                        names.append(x)
        if names:
            lambda_tasks[m] = _suite_order(names, [u.exp.cfg.get("env") for u in all_units[m]])

    pbt = [e for e in selected if e.pbt]
    return Analysis(
        metric=metric,
        options=opts,
        experiments=selected,
        methods=methods,
        units=units,
        all_units=all_units,
        ref_frames=ref,
        curves=curves,
        budget_frames=budget_frames,
        table_budgets=table_budgets,
        thresholds=thresholds,
        table_reach=table_reach,
        table_speedup=table_speedup,
        finals=finals,
        improvement=improvement,
        baseline=baseline,
        teachers=teachers,
        surpass=surpass,
        diagnostics=diagnostics,
        task_scores=task_scores,
        tasks=tasks,
        lambda_tasks=lambda_tasks,
        pbt=pbt,
        notes=notes,
    )


def exploit_frames(exp: Experiment) -> List[Tuple[float, int, int]]:
    """PBT exploit events as (frames of the receiving member, member, copied from), sorted by frames.

    From the `kickstart/pbt_exploit_from` summaries (sf_kickstart.pbt: step = the member's frames, value = the source
    member) when the population has them, else from Sample Factory's `Asking learner <i> to load model from <j>` lines
    in sf_log.txt, whose time is mapped to member i's frames through its event files' wall times."""
    tagged = [
        (float(step), pid, int(round(src)))
        for pid, scalars in exp.policies.items()
        if EXPLOIT_TAG in scalars
        for step, src in zip(scalars[EXPLOIT_TAG].steps, scalars[EXPLOIT_TAG].values)
    ]
    if tagged:
        return sorted(tagged)
    out = []
    for wall, member, source in exp.exploits:
        scalars = exp.policies.get(member, {})
        if not scalars:
            continue
        walls = np.concatenate([s.walls for s in scalars.values()])
        steps = np.concatenate([s.steps for s in scalars.values()])
        order = np.argsort(walls, kind="stable")
        walls, steps = walls[order], np.maximum.accumulate(steps[order])
        out.append((float(np.interp(wall, walls, steps)), member, source))
    return sorted(out)


# ---------------------------------------------------------------------------------------------------------------------
# rendering


def _num(x: Optional[float]) -> str:
    """3 significant digits (85.25 -> 85.2, 0.9234 -> 0.923, 50.0 -> 50)."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.3g}"


def fmt_frames(f: Optional[float]) -> str:
    if f is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(f) >= div:
            return f"{f / div:.3g}{unit}"
    return f"{f:.0f}"


def _stat(s: Stat) -> str:
    if s.mean is None:
        return "-"
    text = _num(s.mean) if s.n == 1 else f"{_num(s.mean)} ± {_num(s.std)}"
    return text if s.n == s.total else f"{text} ({s.n}/{s.total})"


def _table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _method_cell(a: Analysis, m: str) -> str:
    text = f"`{m}`"
    if m == a.baseline:
        text += " (baseline)"
    if a.method_running(m):
        text += " *"
    return text


def render_markdown(a: Analysis, plots: Dict[str, str], argv: Sequence[str] = ()) -> str:
    o = a.options
    md: List[str] = ["# Kickstarting report", ""]
    if argv:
        md += [f"`python -m sf_kickstart.report {' '.join(argv)}`", ""]
    md += [
        f"- score metric: `{a.metric}`" if a.metric else "- score metric: none available",
        f"- baseline: `{a.baseline}`" if a.baseline else "- baseline: none",
        f"- reference frames B: {fmt_frames(a.ref_frames)}" + ("" if o.frames else " (the longest run's target)"),
        f"- final score: mean over the last {o.final_window:.0%} of a run's frames; PBT: top {o.pbt_top} members",
        "- `*`: includes runs that have not finished (see Runs)",
        "",
    ]

    md += ["## Runs", ""]
    rows = []
    for e in a.experiments:
        target = e.cfg.get("train_for_env_steps")
        last = max((s.last_step for sc in e.policies.values() for s in sc.values() if len(s)), default=None)
        rows.append(
            [
                f"`{e.name}`",
                f"`{e.method}`",
                "-" if e.seed is None else str(e.seed),
                str(len(e.policies)) + (" (PBT)" if e.pbt else ""),
                e.status,
                fmt_frames(last),
                fmt_frames(float(target)) if isinstance(target, (int, float)) else "-",
                _setup(e),
            ]
        )
    md += [_table(["experiment", "method", "seed", "policies", "status", "last frame", "target", "setup"], rows), ""]

    if a.metric and a.units:
        md += [f"## Table 1 — score at frame budgets (`{a.metric}`, mean ± std over runs)", ""]
        header = ["method", "runs"] + [f"{f:.0%} ({fmt_frames(F)})" for f, F in zip(o.budgets, a.budget_frames)]
        rows = [[_method_cell(a, m), str(len(a.units[m]))] + [_stat(s) for s in a.table_budgets[m]] for m in a.methods if m in a.units]
        md += [_table(header, rows), ""]

        md += ["## Table 2 — frames to reach a score (first frame of the mean curve) and speedup vs the baseline", ""]
        if a.thresholds:
            header = ["method"]
            for th in a.thresholds:
                header += [f"{th.title}: frames (runs)", "speedup"]
            rows = []
            for m in a.methods:
                if m not in a.units:
                    continue
                row = [_method_cell(a, m)]
                for th in a.thresholds:
                    r = a.table_reach[m][th.key]
                    if r.threshold is None:
                        row += ["-", "-"]
                        continue
                    fr = fmt_frames(r.frames) if r.frames is not None else f"not by {fmt_frames(r.last)}"
                    if th.common is None:
                        fr += f" [{_num(r.threshold)}]"
                    row += [f"{fr} ({r.runs_reached}/{r.runs})", a.table_speedup[m][th.key].text()]
                rows.append(row)
            md += [_table(header, rows), ""]
        else:
            md += ["No thresholds: no teacher score, no baseline and no --thresholds.", ""]

        md += ["## Table 3 — final score and improvement over the baseline", ""]
        header = ["method", "runs", "final score", "vs baseline", "teacher (final score)", "reaches teacher's final at"]
        rows = []
        for m in a.methods:
            if m not in a.units:
                continue
            imp = a.improvement.get(m)
            t = a.teachers.get(m)
            rows.append(
                [
                    _method_cell(a, m),
                    str(len(a.units[m])),
                    _stat(a.finals[m]),
                    "-" if imp is None else f"{imp:+.1f}%",
                    "-" if t is None else f"`{t[0]}` ({_num(t[1])})",
                    "-" if t is None else (fmt_frames(a.surpass.get(m)) if a.surpass.get(m) is not None else "never"),
                ]
            )
        md += [_table(header, rows), ""]

    if a.diagnostics:
        md += ["## Kickstarting diagnostics (final values, mean over runs)", ""]
        header = ["method"] + [f"`{k}`" for k in KS_DIAGNOSTICS]
        rows = [[_method_cell(a, m)] + [_num(a.diagnostics[m][k]) for k in KS_DIAGNOSTICS] for m in a.methods if m in a.diagnostics]
        md += [_table(header, rows), ""]

    if a.task_scores:
        md += ["## Final normalised score per task (`suite/<Task>_normalized`, mean over runs)", ""]
        header = ["method"] + a.tasks
        rows = [[_method_cell(a, m)] + [_num(a.task_scores[m][t]) for t in a.tasks] for m in a.methods if m in a.task_scores]
        md += [_table(header, rows), ""]

    if a.pbt:
        md += ["## PBT populations", ""]
        for e in a.pbt:
            md += [f"### `{e.name}`", ""]
            rows = []
            ev = exploit_frames(e)
            for pid, sc in sorted(e.policies.items()):
                sc = comparable_scalars(sc, a.metric)
                lam = sc.get(LAMBDA_TAG) or sc.get(PBT_LAMBDA_TAG)
                score = sc.get(a.metric) if a.metric else None
                lr = sc.get("zz_pbt/cfg_learning_rate") or sc.get("train/lr")
                rows.append(
                    [
                        f"p{pid}",
                        _num(final_score(score, o.final_window)) if score is not None and len(score) else "-",
                        _num(float(lam.values[-1])) if lam is not None and len(lam) else "-",
                        _num(float(lr.values[-1])) if lr is not None and len(lr) else "-",
                        str(sum(1 for _, mem, _ in ev if mem == pid)),
                    ]
                )
            md += [_table(["member", "final score", "last λ", "last lr", "exploits received"], rows), ""]
            if ev:
                md += ["Exploit events (member ← source at the member's frames): " + ", ".join(f"p{mem} ← p{src} at {fmt_frames(f)}" for f, mem, src in ev), ""]
            else:
                md += [f"No exploit events (no `{EXPLOIT_TAG}` summaries nor exploit lines in sf_log.txt).", ""]

    if plots:
        md += ["## Plots", ""]
        for title, fname in plots.items():
            md += [f"### {title}", "", f"![{title}]({fname})", ""]

    if a.notes:
        md += ["## Notes", ""] + [f"- {n}" for n in a.notes] + [""]
    return "\n".join(md)


def _setup(e: Experiment) -> str:
    c = e.cfg
    if not c:
        return "-"
    parts = [str(c.get("env", "?"))]
    if c.get("teacher") or c.get("teachers"):
        t = c.get("teacher") or c.get("teachers")
        parts.append(f"teacher `{os.path.basename(os.path.normpath(str(t)))}`")
        sched = c.get("kickstart_schedule", "?")
        lam = c.get("kickstart_lambda")
        if sched == "linear":
            parts.append(f"λ {lam:g}→0 at {fmt_frames(c.get('kickstart_end_frames'))}")
        elif sched == "exponential":
            parts.append(f"λ {lam:g}·{c.get('kickstart_decay'):g}^(t/{fmt_frames(c.get('kickstart_decay_frames'))})")
        else:
            parts.append(f"λ {sched} {lam:g}" if isinstance(lam, (int, float)) else f"λ {sched}")
        if c.get("kickstart_distill_only"):
            parts.append("distillation only")
    if c.get("with_pbt"):
        parts.append(f"PBT × {c.get('num_policies')}")
    return ", ".join(parts)


def make_plots(a: Analysis, out_dir: str) -> Dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: Dict[str, str] = {}
    colors = {m: plt.get_cmap("tab10" if len(a.methods) <= 10 else "tab20")(i % 20) for i, m in enumerate(a.methods)}

    if a.metric and a.curves:
        fig, ax = plt.subplots(figsize=(9, 5.5))
        teacher_lines = {}
        for m in a.methods:
            c = a.curves.get(m)
            if c is None or not len(c.steps):
                continue
            ax.plot(c.steps, c.mean, color=colors[m], label=f"{m} ({len(a.units[m])})")
            if len(a.units[m]) > 1:
                ax.fill_between(c.steps, c.lo, c.hi, color=colors[m], alpha=0.18, linewidth=0)
            if m in a.teachers and a.teachers[m][1] is not None:
                teacher_lines[a.teachers[m][0]] = a.teachers[m][1]
                f = a.surpass.get(m)
                if f is not None:
                    ax.plot([f], [c.at(f)], marker="*", markersize=13, color=colors[m], markeredgecolor="black", zorder=5)
        for name, v in teacher_lines.items():
            ax.axhline(v, linestyle="--", color="gray", linewidth=1)
            ax.annotate(f"teacher {name} final", (0, v), textcoords="offset points", xytext=(4, 3), fontsize=8, color="gray")
        ax.set_xlabel("frames")
        ax.set_ylabel(a.metric)
        ax.set_title("Learning curves (mean, band: min..max over runs; ★ reaches its teacher's final score)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "learning_curves.png"), dpi=110)
        plt.close(fig)
        plots["Learning curves"] = "learning_curves.png"

    lam_methods = [m for m in a.methods if any(LAMBDA_TAG in u.scalars for u in (a.units.get(m) or a.all_units[m]))]
    if lam_methods:
        fig, ax = plt.subplots(figsize=(9, 4))
        for m in lam_methods:
            pool = [u.scalars[LAMBDA_TAG] for u in (a.units.get(m) or a.all_units[m]) if LAMBDA_TAG in u.scalars]
            c = mean_curve(pool)
            ax.plot(c.steps, c.mean, color=colors[m], label=m)
            if len(pool) > 1:
                ax.fill_between(c.steps, c.lo, c.hi, color=colors[m], alpha=0.15, linewidth=0)
        ax.set_xlabel("frames")
        ax.set_ylabel("λ")
        ax.set_title("Kickstarting weight λ over training (mean over runs)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "lambda.png"), dpi=110)
        plt.close(fig)
        plots["λ over training"] = "lambda.png"

    if a.lambda_tasks:
        ms = list(a.lambda_tasks)
        fig, axes = plt.subplots(len(ms), 1, figsize=(9, 1.2 + 0.35 * max(len(t) for t in a.lambda_tasks.values()) * len(ms)), squeeze=False)
        for ax, m in zip(axes[:, 0], ms):
            tasks = a.lambda_tasks[m]
            pool = a.units.get(m) or a.all_units[m]
            end = max(s.last_step for u in pool for s in u.scalars.values() if len(s))
            grid = np.linspace(0, end, 120)
            img = np.full((len(tasks), len(grid)), np.nan)
            for i, t in enumerate(tasks):
                series = [u.scalars[f"kickstart/lambda_{t}"] for u in pool if f"kickstart/lambda_{t}" in u.scalars]
                if series:
                    vals = grid_values(series, grid)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before the first point
                        img[i] = np.nanmean(vals, axis=0)
            im = ax.imshow(img, aspect="auto", interpolation="nearest", extent=[0, end, len(tasks), 0], cmap="viridis")
            ax.set_yticks(np.arange(len(tasks)) + 0.5)
            ax.set_yticklabels(tasks, fontsize=7)
            ax.set_title(f"{m}: per-task λ_i", fontsize=9)
            fig.colorbar(im, ax=ax, label="λ_i")
        axes[-1, 0].set_xlabel("frames")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "lambda_tasks.png"), dpi=110)
        plt.close(fig)
        plots["Per-task λ_i"] = "lambda_tasks.png"

    pbt_with_lambda = [e for e in a.pbt if any(LAMBDA_TAG in sc or PBT_LAMBDA_TAG in sc for sc in e.policies.values())]
    if pbt_with_lambda:
        fig, axes = plt.subplots(len(pbt_with_lambda), 1, figsize=(9, 3.8 * len(pbt_with_lambda)), squeeze=False)
        for ax, e in zip(axes[:, 0], pbt_with_lambda):
            cmap = plt.get_cmap("tab10")
            lam = {pid: (sc.get(LAMBDA_TAG) or sc.get(PBT_LAMBDA_TAG)) for pid, sc in e.policies.items()}
            for pid, s in sorted(lam.items()):
                if s is not None and len(s):
                    ax.plot(s.steps, s.values, color=cmap(pid % 10), label=f"p{pid}", drawstyle="steps-post")
            for f, mem, src in exploit_frames(e):
                s_src, s_mem = lam.get(src), lam.get(mem)
                if s_src is None or s_mem is None or not len(s_src) or not len(s_mem):
                    continue
                y0 = value_at(s_src, f) or float(s_src.values[0])
                later = np.nonzero(s_mem.steps > f)[0]
                y1 = float(s_mem.values[later[0]]) if len(later) else float(s_mem.values[-1])
                ax.annotate("", xy=(f, y1), xytext=(f, y0), arrowprops=dict(arrowstyle="->", color=cmap(mem % 10), lw=1))
            ax.set_title(f"{e.name}: λ of each member (arrows: exploit, copied from → to)", fontsize=9)
            ax.set_ylabel("λ")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, ncol=4)
        axes[-1, 0].set_xlabel("frames")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "pbt_lambda.png"), dpi=110)
        plt.close(fig)
        plots["PBT lineage of λ"] = "pbt_lambda.png"
    return plots


# ---------------------------------------------------------------------------------------------------------------------
# entry point


def _floats(text: str) -> Tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sf_kickstart.report",
        description="Paper-style tables (report.md) and PNG plots from Sample Factory experiments' tensorboard events.",
    )
    p.add_argument("train_dirs", nargs="+", metavar="TRAIN_DIR", help="directories searched for experiments")
    p.add_argument("--out", default=None, help="output dir (default: <first TRAIN_DIR>/report)")
    p.add_argument("--metric", default=None, help=f"score tag (default: the first present of {', '.join(SCORE_METRICS)})")
    p.add_argument("--budgets", type=_floats, default=(0.1, 0.25, 0.5, 1.0), help="fractions of B for Table 1")
    p.add_argument("--frames", type=float, default=None, help="reference frames B (default: the longest run)")
    p.add_argument("--thresholds", type=_floats, default=(), help="extra scores for Table 2, e.g. 50,80")
    p.add_argument("--baseline", default=None, help=f"baseline method (default: {BASELINE_DEFAULT})")
    p.add_argument("--teacher_score", type=float, default=None, help="use this as every teacher's final score")
    p.add_argument("--pbt_top", type=int, default=3, help="PBT members per population in the tables")
    p.add_argument("--final_window", type=float, default=0.05, help="fraction of a run's frames averaged as its final score")
    p.add_argument("--exclude_running", action="store_true", help="leave unfinished runs out")
    p.add_argument("--methods", nargs="*", default=(), help="only these methods (glob patterns)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)

    def err(msg: str, code: int) -> int:
        print(f"sf_kickstart.report: error: {msg}", file=sys.stderr)
        return code

    missing = [d for d in args.train_dirs if not os.path.isdir(d)]
    if missing:
        return err(f"{', '.join(missing)}: no such directory", 2)
    if args.pbt_top < 1 or not (0 < args.final_window <= 1) or any(not (0 < f <= 10) for f in args.budgets):
        return err("--pbt_top must be >= 1, --final_window in (0, 1], --budgets positive fractions", 2)

    experiments = load_experiments(args.train_dirs)
    if not experiments:
        return err(
            f"no Sample Factory experiment under {', '.join(args.train_dirs)}: expected "
            f"<experiment>/.summary/<policy_id>/events.out.tfevents.* (is this a train_dir?)",
            1,
        )
    opts = Options(
        metric=args.metric,
        budgets=tuple(args.budgets),
        frames=args.frames,
        thresholds=tuple(args.thresholds),
        baseline=args.baseline,
        teacher_score=args.teacher_score,
        pbt_top=args.pbt_top,
        final_window=args.final_window,
        exclude_running=args.exclude_running,
        methods=tuple(args.methods or ()),
    )
    a = analyse(experiments, opts)
    all_tags = sorted({t for us in a.all_units.values() for u in us for t in u.scalars})
    has_ks = any(t.startswith("kickstart/") for t in all_tags)
    if not a.units and not has_ks:
        if not all_tags:
            why = "no scalar summaries in any event file"
        elif a.metric is None:
            why = f"no run has a score metric ({', '.join(SCORE_METRICS)}) nor any kickstart/* tag"
        else:
            why = f"no run has `{a.metric}` nor any kickstart/* tag"
        shown = ", ".join(all_tags[:25]) + (" ..." if len(all_tags) > 25 else "")
        return err(f"nothing to report for {len(experiments)} experiment(s): {why}. Tags present: {shown or 'none'}", 1)

    out = args.out or os.path.join(args.train_dirs[0], "report")
    os.makedirs(out, exist_ok=True)
    plots = make_plots(a, out)
    text = render_markdown(a, plots, argv)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text)
    for n in a.notes:
        print(f"sf_kickstart.report: note: {n}", file=sys.stderr)
    print(f"wrote {os.path.join(out, 'report.md')} and {len(plots)} plot(s) for {len(a.methods)} method(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
