"""Analysis of loaded experiments as small pure steps (no disk access, nothing rendered): `analyse` composes them
into an `Analysis`, which holds every number the markdown and the plots show."""

from __future__ import annotations

import fnmatch
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from sf_kickstart import tags
from sf_kickstart.events import Series
from sf_kickstart.report.model import Experiment, Unit
from sf_kickstart.stats import band, improvement_ci, mean_ci
from sf_kickstart.suites.registry import default_task_names, same_scores

BASELINE_DEFAULT = "large_scratch"
COVER_TOL = 0.02

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
        return first_reach(self.steps, self.mean, threshold)

    def at(self, frames: float) -> Optional[float]:
        idx = int(np.searchsorted(self.steps, frames, side="right")) - 1
        return float(self.mean[idx]) if idx >= 0 else None


def first_reach(steps: Sequence[float], values: Sequence[float], threshold: float) -> Optional[float]:
    """The first step whose value is >= threshold, else None."""
    idx = np.nonzero(np.asarray(values, dtype=np.float64) >= threshold)[0]
    return float(steps[idx[0]]) if len(idx) else None


def mean_curve(series: Sequence[Series]) -> Curve:
    """Mean over runs on their common frame range; lo/hi: the 95 % bootstrap band of the mean (the mean itself for
    one run)."""
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
    mean = vals.mean(axis=0)
    lo_hi = band(vals)
    return Curve(grid, mean, *(lo_hi if lo_hi is not None else (mean, mean)))


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
    ci: Optional[Tuple[float, float]] = None  # 95 % bootstrap interval of the mean (None: fewer than 2 runs)
    values: Tuple[float, ...] = ()  # the runs' values

    @staticmethod
    def of(values: Sequence[Optional[float]]) -> "Stat":
        vals = [v for v in values if v is not None and math.isfinite(v)]
        if not vals:
            return Stat(None, None, 0, len(values))
        return Stat(float(np.mean(vals)), float(np.std(vals)), len(vals), len(values), mean_ci(vals), tuple(vals))


@dataclass
class Reach:
    frames: Optional[float]  # first step of the mean curve >= threshold
    last: Optional[float]  # last step of the mean curve (the bound when not reached)
    runs_reached: int
    runs: int
    threshold: Optional[float]
    per_run: Optional[Stat] = None  # each run's first frame >= threshold, over the runs that reach it


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
    # what the rendering shows besides the tables, computed here (rendering never recomputes)
    last_frames: Dict[str, Optional[float]] = field(default_factory=dict)  # experiment name -> its last logged step
    lambda_curves: Dict[str, Tuple[Curve, int]] = field(default_factory=dict)  # method -> (mean λ curve, runs)
    lambda_task_grids: Dict[str, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # method -> grid, [T, G]
    pbt_views: Dict[str, "PbtView"] = field(default_factory=dict)  # PBT experiment name -> members, exploits
    improvement_ci: Dict[str, Optional[Tuple[float, float]]] = field(default_factory=dict)

    def pool(self, method: str) -> List[Unit]:
        """The method's units in the score tables, else all of them (methods without the metric)."""
        return self.units.get(method) or self.all_units.get(method, [])

    def method_running(self, method: str) -> bool:
        return any(u.exp.running for u in self.all_units.get(method, []))


@dataclass
class PbtMember:
    policy: int
    final: Optional[float]
    last_lambda: Optional[float]
    last_lr: Optional[float]
    exploits_received: int


@dataclass
class PbtView:
    """A population as the report shows it: its members' rows, exploit events and λ series with exploit arrows."""

    members: List[PbtMember]
    exploits: List[Tuple[float, int, int]]  # (member's frames, member, source)
    lambdas: Dict[int, Series]  # member -> λ series (kickstart/lambda, else SF's zz_pbt/cfg_kickstart_lambda)
    arrows: List[Tuple[float, float, float, int]]  # (frames, λ of the source, λ of the member after, member)


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def comparable_scalars(scalars: Dict[str, Series], metric: Optional[str]) -> Dict[str, Series]:
    """Drop the suite-aggregate metric's points logged before every task had reported.

    The suite score averages the tasks that have finished an episode so far (the short, easy ones first), so its
    early points are not comparable with later ones, nor between runs. With the number of tasks seen logged, only the
    points where it has reached its final value are kept (`suite/tasks_seen`, or Atari's `suite/games_seen`)."""
    seen_tag = next((t for t in tags.SEEN_TAGS if t in scalars), None)
    if metric not in tags.SUITE_AGGREGATES or metric not in scalars or seen_tag is None:
        return scalars
    s, seen = scalars[metric], scalars[seen_tag]
    if not len(s) or not len(seen):
        return scalars
    full = seen.values[-1]
    idx = np.searchsorted(seen.steps, s.steps, side="right") - 1
    ok = (idx >= 0) & (seen.values[np.clip(idx, 0, None)] >= full)
    return {**scalars, metric: Series(s.steps[ok], s.values[ok], s.walls[ok])}


def suite_order(tasks: List[str], envs: Iterable[Optional[str]]) -> List[str]:
    """tasks in their suite's task-id order when the suite is known (else as first seen), unknown ones last."""
    for env in dict.fromkeys(e for e in envs if e):
        try:
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
    for m in tags.SCORE_METRICS:
        if any(m in u.scalars and len(u.scalars[m]) for u in units):
            return m
    return None


def exploit_frames(exp: Experiment) -> List[Tuple[float, int, int]]:
    """PBT exploit events as (frames of the receiving member, member, copied from), sorted by frames.

    From the `kickstart/pbt_exploit_from` summaries (sf_kickstart.pbt: step = the member's frames, value = the source
    member) when the population has them, else from Sample Factory's `Asking learner <i> to load model from <j>` lines
    in sf_log.txt, whose time is mapped to member i's frames through its event files' wall times."""
    tagged = [
        (float(step), pid, int(round(src)))
        for pid, scalars in exp.policies.items()
        if tags.EXPLOIT in scalars
        for step, src in zip(scalars[tags.EXPLOIT].steps, scalars[tags.EXPLOIT].values)
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
# steps of analyse


def select_experiments(experiments: List[Experiment], opts: Options, notes: List[str]) -> List[Experiment]:
    """--methods and --exclude_running."""
    selected = experiments
    if opts.methods:
        selected = [e for e in experiments if any(fnmatch.fnmatch(e.method, pat) for pat in opts.methods)]
    if opts.exclude_running:
        dropped = [e.name for e in selected if e.running]
        if dropped:
            notes.append(f"left out as unfinished (--exclude_running): {', '.join(dropped)}")
        selected = [e for e in selected if not e.running]
    return selected


def units_by_method(selected: List[Experiment]) -> Dict[str, List[Unit]]:
    all_units: Dict[str, List[Unit]] = {}
    for e in selected:
        for pid, scalars in sorted(e.policies.items()):
            all_units.setdefault(e.method, []).append(Unit(e, pid, scalars))
    return all_units


def _has_metric(u: Unit, metric: Optional[str]) -> bool:
    return metric is not None and metric in u.scalars and len(u.scalars[metric]) > 0


def table_units(all_units: Dict[str, List[Unit]], metric: Optional[str], opts: Options, notes: List[str]):
    """Units in the score tables: runs with the metric; PBT populations: their top-k members by final score."""
    units: Dict[str, List[Unit]] = {}
    for method, us in all_units.items():
        missing = [u.label for u in us if not _has_metric(u, metric)]
        if missing and metric is not None:
            notes.append(f"method `{method}`: no `{metric}` in {', '.join(missing)} (left out of the score tables)")
        keep: List[Unit] = []
        for exp in dict.fromkeys(u.exp for u in us):
            members = [u for u in us if u.exp is exp and _has_metric(u, metric)]
            if exp.pbt and members:
                by_final = lambda u: final_score(u.scalars[metric], opts.final_window)  # noqa: E731
                members = sorted(members, key=by_final, reverse=True)[: opts.pbt_top]
                notes.append(
                    f"`{exp.name}` (PBT, {len(exp.policies)} members): one run in the tables, the mean curve of its "
                    f"top {opts.pbt_top} members by final score: {', '.join('p%d' % u.policy for u in members)}"
                )
                members = [population_unit(exp, members, metric)]
            keep.extend(members)
        if keep:
            units[method] = keep
    return units


def population_unit(exp: Experiment, members: List[Unit], metric: str) -> Unit:
    """A PBT population as one run of its method: the mean curve of `members` (its top members), policy -1; the best
    member's curve when their logged frames do not overlap (a very short run)."""
    c = mean_curve([u.scalars[metric] for u in members])
    scalars = dict(members[0].scalars)
    if len(c.steps):
        scalars[metric] = Series(c.steps, c.mean, np.zeros_like(c.steps))
    return Unit(exp, -1, scalars)


def _kickstarted(us: Iterable[Unit]) -> bool:
    return any(u.exp.teacher or u.exp.teachers_map for u in us)


def choose_baseline(units: Dict[str, List[Unit]], metric, opts: Options, notes: List[str]) -> Optional[str]:
    baseline = opts.baseline
    if baseline is not None and baseline not in units:
        notes.append(f"--baseline={baseline}: no such method with `{metric}` (have: {', '.join(sorted(units)) or 'none'})")
        baseline = None
    if opts.baseline is None:
        if BASELINE_DEFAULT in units:
            baseline = BASELINE_DEFAULT
        else:
            cands = [m for m in units if "scratch" in m and not _kickstarted(units[m])]
            baseline = cands[0] if len(cands) == 1 else None
        if baseline is None and units:
            notes.append("no baseline method (`large_scratch`, or pass --baseline METHOD): no speedups or improvements")
    return baseline


def method_order(all_units: Dict[str, List[Unit]], baseline: Optional[str]) -> List[str]:
    """Baseline, methods without a teacher, kickstarted ones; natural order inside each."""
    return sorted(all_units, key=lambda m: (m != baseline, _kickstarted(all_units.get(m, [])), _natural_key(m)))


def method_teacher(m: str, exps: List[Experiment], metric, opts: Options, notes: List[str]):
    """(teacher name, its final score) of a method, or None with a note saying why not."""
    if any(e.teachers_map for e in exps):
        notes.append(f"method `{m}` uses a multi-teacher map (--teachers): no single teacher score")
        return None
    raws = {e.teacher for e in exps if e.teacher}
    if not raws:
        return None
    if opts.teacher_score is not None:
        return ("--teacher_score", opts.teacher_score)
    resolved = [e.teacher_experiment for e in exps if e.teacher]
    if any(t is None for t in resolved):
        notes.append(f"method `{m}`: teacher {sorted(raws)} not found (no teacher score)")
        return None
    if len({t.path for t in resolved}) > 1:
        notes.append(f"method `{m}`: its seeds have different teachers {sorted({t.name for t in resolved})} (no teacher score)")
        return None
    t = resolved[0]
    student_env = exps[0].cfg.get("env")
    if t.cfg.get("env") and student_env and not same_scores(t.cfg.get("env"), student_env):
        notes.append(
            f"method `{m}`: teacher `{t.name}` was trained on {t.cfg.get('env')}, the student on {student_env}: "
            f"scores not comparable (no teacher threshold)"
        )
        return None
    if metric is None:
        return None  # the run-wide note says there is no score metric
    scalars = comparable_scalars(t.policies.get(0, {}), metric)  # a --teacher is policy 0 of its experiment
    if metric not in scalars or not len(scalars[metric]):
        notes.append(f"method `{m}`: teacher `{t.name}` has no `{metric}` (no teacher score)")
        return None
    if t.running:
        notes.append(f"teacher `{t.name}` is unfinished: its 'final' score is its latest")
    return (t.name, final_score(scalars[metric], opts.final_window))


def reference_frames(units: Dict[str, List[Unit]], metric, opts: Options) -> Optional[float]:
    """B: --frames, else the largest train_for_env_steps of the table runs, else their largest last step."""
    if opts.frames is not None or not units:
        return opts.frames
    targets = [u.exp.cfg.get("train_for_env_steps") for us in units.values() for u in us]
    targets = [float(t) for t in targets if isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0]
    return max(targets) if targets else max(u.scalars[metric].last_step for us in units.values() for u in us)


def coverage_tolerance(s: Series, tol: float) -> float:
    """How far before F a run's last point may be and still cover F: tol, or two of its logging intervals."""
    gaps = np.diff(s.steps)
    return max(tol, 2.0 * float(np.median(gaps))) if len(gaps) else tol


def improvements(finals: Dict[str, Stat], baseline: Optional[str]) -> Dict[str, Optional[float]]:
    b = finals.get(baseline) if baseline else None
    out: Dict[str, Optional[float]] = {}
    for m, f in finals.items():
        ok = b is not None and b.mean is not None and f.mean is not None and b.mean != 0
        out[m] = 100.0 * (f.mean - b.mean) / abs(b.mean) if ok else None
    return out


def improvement_cis(finals: Dict[str, Stat], baseline: Optional[str]) -> Dict[str, Optional[Tuple[float, float]]]:
    """95 % bootstrap interval of each method's improvement over the baseline (seeds of both resampled)."""
    b = finals.get(baseline) if baseline else None
    if b is None or b.mean is None or baseline is None:
        return {}
    return {m: improvement_ci(f.values, b.values) for m, f in finals.items() if m != baseline and f.values}


def make_thresholds(teachers, finals: Dict[str, Stat], baseline: Optional[str], opts: Options) -> List[Threshold]:
    thresholds: List[Threshold] = []
    tvals = {m: s for m, (_, s) in teachers.items() if s is not None}
    if tvals:
        if len(set(round(v, 12) for v in tvals.values())) == 1:
            v = next(iter(tvals.values()))
            thresholds.append(Threshold("teacher", f"teacher's final score ({num(v)})", v))
        else:
            thresholds.append(Threshold("teacher", "its teacher's final score", None, dict(tvals)))
    if baseline and finals.get(baseline) and finals[baseline].mean is not None:
        v = finals[baseline].mean
        if not any(th.common is not None and math.isclose(th.common, v) for th in thresholds):
            thresholds.append(Threshold("baseline", f"baseline's final score ({num(v)})", v))
    for v in opts.thresholds:
        thresholds.append(Threshold(f"score {v:g}", f"score {num(v)}", float(v)))
    return thresholds


def reach(units: List[Unit], curve: Optional[Curve], metric, thr: Optional[float]) -> Reach:
    if thr is None or curve is None:
        return Reach(None, None, 0, len(units), thr)
    firsts = [first_reach(u.scalars[metric].steps, u.scalars[metric].values, thr) for u in units]
    k = sum(1 for f in firsts if f is not None)
    return Reach(curve.first_reach(thr), curve.last_step, k, len(units), thr, Stat.of(firsts))


def reach_tables(units, curves, metric, thresholds: List[Threshold], baseline: Optional[str]):
    """Table 2: per method and threshold, frames to reach it and the speedup over the baseline."""
    table_reach: Dict[str, Dict[str, Reach]] = {m: {} for m in units}
    table_speedup: Dict[str, Dict[str, Speedup]] = {m: {} for m in units}
    for th in thresholds:
        for m in units:
            v = th.value_for(m)
            r = reach(units[m], curves.get(m), metric, v)
            table_reach[m][th.key] = r
            base = reach(units[baseline], curves.get(baseline), metric, v) if baseline and v is not None else None
            table_speedup[m][th.key] = speedup(r, base) if base is not None else Speedup(None)
    return table_reach, table_speedup


def final_means(methods: List[str], pool, tag_of: Dict[str, str], window: float) -> Dict[str, Dict[str, Optional[float]]]:
    """{method: {column: mean final value of tag_of[column] over the method's units}} (methods with no data left out)."""
    table = {}
    for m in methods:
        row = {}
        for col, tag in tag_of.items():
            vals = [final_score(u.scalars[tag], window) for u in pool(m) if tag in u.scalars and len(u.scalars[tag])]
            row[col] = float(np.mean(vals)) if vals else None
        if any(v is not None for v in row.values()):
            table[m] = row
    return table


def task_names_logged(methods: List[str], pool, envs) -> List[str]:
    """Tasks with a `suite/<task>_normalized` tag, in their suite's order."""
    tasks: List[str] = []
    for m in methods:
        for u in pool(m):
            for tag in u.scalars:
                t = tags.normalized_task(tag)
                if t is not None and t not in tasks:
                    tasks.append(t)
    return suite_order(tasks, envs)


def lambda_task_names(us: List[Unit]) -> List[str]:
    """Tasks with a per-task λ: `kickstart/task_lambda/<task>`, or (runs before that tag) the `kickstart/lambda_<X>`
    tags with no matching `kickstart/rho_<X>` (those are the teachers' own)."""
    names: List[str] = []
    for u in us:
        teachers_here = {t[len(tags.TEACHER_RHO_PREFIX) :] for t in u.scalars if t.startswith(tags.TEACHER_RHO_PREFIX)}
        for tag in u.scalars:
            x = None
            if tag.startswith(tags.TASK_LAMBDA_PREFIX):
                x = tag[len(tags.TASK_LAMBDA_PREFIX) :]
            elif tag.startswith(tags.TEACHER_LAMBDA_PREFIX) and tag[len(tags.TEACHER_LAMBDA_PREFIX) :] not in teachers_here:
                x = tag[len(tags.TEACHER_LAMBDA_PREFIX) :]
            if x is not None and x not in names:
                names.append(x)
    return suite_order(names, [u.exp.cfg.get("env") for u in us]) if names else []


def task_lambda_series(u: Unit, task: str) -> Optional[Series]:
    return u.scalars.get(tags.task_lambda(task)) or u.scalars.get(tags.teacher_lambda(task))


def lambda_task_grid(us: List[Unit], tasks: List[str], points: int = 120) -> Tuple[np.ndarray, np.ndarray]:
    """Per-task λ on a frame grid, mean over runs: grid [G], values [T, G] (NaN where no run has data)."""
    end = max(s.last_step for u in us for s in u.scalars.values() if len(s))
    grid = np.linspace(0, end, points)
    img = np.full((len(tasks), len(grid)), np.nan)
    for i, t in enumerate(tasks):
        series = [s for s in (task_lambda_series(u, t) for u in us) if s is not None]
        if series:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before the first point
                img[i] = np.nanmean(grid_values(series, grid), axis=0)
    return grid, img


def tasks_differ(img: np.ndarray, tol: float = 1e-6) -> bool:
    """Whether per-task λ rows [T, G] differ anywhere (NaN: no data there)."""
    if img.shape[0] < 2:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmax(img, axis=0) - np.nanmin(img, axis=0)
    return bool(np.any(np.nan_to_num(spread) > tol))


def lambda_of(scalars: Dict[str, Series]) -> Optional[Series]:
    return scalars.get(tags.LAMBDA) or scalars.get(tags.PBT_LAMBDA)


def pbt_view(e: Experiment, metric: Optional[str], window: float) -> PbtView:
    ev = exploit_frames(e)
    members = []
    for pid, sc in sorted(e.policies.items()):
        sc = comparable_scalars(sc, metric)
        lam, score = lambda_of(sc), sc.get(metric) if metric else None
        lr = sc.get(tags.PBT_LR) or sc.get(tags.TRAIN_LR)
        last = lambda s: float(s.values[-1]) if s is not None and len(s) else None  # noqa: E731
        final = final_score(score, window) if score is not None and len(score) else None
        members.append(PbtMember(pid, final, last(lam), last(lr), sum(1 for _, mem, _ in ev if mem == pid)))
    lambdas = {pid: s for pid, s in ((pid, lambda_of(sc)) for pid, sc in e.policies.items()) if s is not None and len(s)}
    arrows = []
    for f, mem, src in ev:
        s_src, s_mem = lambdas.get(src), lambdas.get(mem)
        if s_src is None or s_mem is None:
            continue
        y0 = value_at(s_src, f) or float(s_src.values[0])
        later = np.nonzero(s_mem.steps > f)[0]
        arrows.append((f, y0, float(s_mem.values[later[0]]) if len(later) else float(s_mem.values[-1]), mem))
    return PbtView(members, ev, lambdas, arrows)


def num(x: Optional[float]) -> str:
    """3 significant digits (85.25 -> 85.2, 0.9234 -> 0.923, 50.0 -> 50)."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.3g}"


def score_tables(units: Dict[str, List[Unit]], metric, ref: Optional[float], opts: Options):
    """Curves, Table 1 (score at the budgets) and the final scores."""
    curves = {m: mean_curve([u.scalars[metric] for u in units[m]]) for m in units} if metric else {}
    budget_frames = [f * ref for f in opts.budgets] if ref else []
    tol = COVER_TOL * ref if ref else 0.0
    table_budgets = {
        m: [Stat.of([value_at(u.scalars[metric], F, coverage_tolerance(u.scalars[metric], tol)) for u in units[m]])
            for F in budget_frames]
        for m in units
    }
    finals = {m: Stat.of([final_score(u.scalars[metric], opts.final_window) for u in units[m]]) for m in units}
    return curves, budget_frames, table_budgets, finals


def analyse(experiments: List[Experiment], opts: Options) -> Analysis:
    notes = [f"`{e.name}`: {n}" for e in experiments for n in e.notes]
    selected = select_experiments(experiments, opts, notes)
    all_units = units_by_method(selected)
    metric = choose_metric([u for us in all_units.values() for u in us], opts.metric)
    if metric is None:
        notes.append(f"none of the runs has a score metric ({', '.join(tags.SCORE_METRICS)}): no score tables")
    for u in (u for us in all_units.values() for u in us):
        u.scalars = comparable_scalars(u.scalars, metric)
    units = table_units(all_units, metric, opts, notes)
    baseline = choose_baseline(units, metric, opts, notes)
    methods = method_order(all_units, baseline)
    exps_of = {m: list(dict.fromkeys(u.exp for u in all_units[m])) for m in methods}
    teachers = {m: t for m in methods if (t := method_teacher(m, exps_of[m], metric, opts, notes)) is not None}
    ref = reference_frames(units, metric, opts)
    curves, budget_frames, table_budgets, finals = score_tables(units, metric, ref, opts)
    thresholds = make_thresholds(teachers, finals, baseline, opts)
    table_reach, table_speedup = reach_tables(units, curves, metric, thresholds, baseline)
    a = Analysis(
        metric=metric, options=opts, experiments=selected, methods=methods, units=units, all_units=all_units,
        ref_frames=ref, curves=curves, budget_frames=budget_frames, table_budgets=table_budgets,
        thresholds=thresholds, table_reach=table_reach, table_speedup=table_speedup, finals=finals,
        improvement=improvements(finals, baseline), improvement_ci=improvement_cis(finals, baseline),
        baseline=baseline, teachers=teachers,
        surpass={m: reach(units[m], curves.get(m), metric, teachers[m][1]).frames for m in units if m in teachers},
        diagnostics={}, task_scores={}, tasks=[], lambda_tasks={}, pbt=[e for e in selected if e.pbt], notes=notes,
    )
    add_diagnostics(a)
    add_figures(a)
    return a


def add_diagnostics(a: Analysis) -> None:
    """Kickstart diagnostics and per-task scores: final values, mean over the table units (all units without metric)."""
    w = a.options.final_window
    a.diagnostics = final_means(a.methods, a.pool, {k: tags.kickstart(k) for k in tags.KS_DIAGNOSTICS}, w)
    a.tasks = task_names_logged(a.methods, a.pool, [e.cfg.get("env") for e in a.experiments])
    a.task_scores = final_means(a.methods, a.pool, {t: tags.task_normalized(t) for t in a.tasks}, w)
    a.lambda_tasks = {m: names for m in a.methods if (names := lambda_task_names(a.all_units[m]))}


def add_figures(a: Analysis) -> None:
    """What the plots and the runs/PBT sections show besides the tables."""
    a.last_frames = {
        e.name: max((s.last_step for sc in e.policies.values() for s in sc.values() if len(s)), default=None)
        for e in a.experiments
    }
    for m in a.methods:
        pool = [u.scalars[tags.LAMBDA] for u in a.pool(m) if tags.LAMBDA in u.scalars]
        if pool:
            a.lambda_curves[m] = (mean_curve(pool), len(pool))
    a.lambda_task_grids = {m: lambda_task_grid(a.pool(m), tasks) for m, tasks in a.lambda_tasks.items()}
    same = [m for m, (_, img) in a.lambda_task_grids.items() if not tasks_differ(img)]
    for m in same:  # one teacher with a fixed schedule: the heat map would only repeat lambda.png per task
        del a.lambda_task_grids[m]
        del a.lambda_tasks[m]
    a.pbt_views = {e.name: pbt_view(e, a.metric, a.options.final_window) for e in a.pbt}
