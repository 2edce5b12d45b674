"""The one reader of tensorboard event files (ground floor): an experiment's `.summary/<policy>/events.out.tfevents.*`
as `Series` per tag, read with tensorboard's own event-file loader. All event files of a policy are merged in the
order they were written; a step that goes back (a restart from an earlier checkpoint) drops the later points, as
tensorboard does. Used by the report, the Tune populations, the launchers, the benchmarks and the tests.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np


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


def _event_file_order(path: str):
    m = re.search(r"tfevents\.(\d+)", os.path.basename(path))
    return (int(m.group(1)) if m else 0, path)


def _scalar(value) -> Optional[float]:
    """The number a summary value holds (simple_value, or a one-element numeric tensor), else None."""
    from tensorboard.util import tensor_util

    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind != "tensor":
        return None
    try:
        arr = tensor_util.make_ndarray(value.tensor)
    except Exception:  # noqa: BLE001 - a non-numeric tensor is not a scalar
        return None
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        return None
    return float(arr.reshape(-1)[0])


def _read_file(path: str, raw: Dict[str, List[Tuple[float, float, float]]]) -> None:
    """Add one event file's scalar points to `raw` (tag -> [(step, value, wall time)])."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    for event in LegacyEventFileLoader(path).Load():
        if not event.HasField("summary"):
            continue
        for v in event.summary.value:
            val = _scalar(v)
            if val is None:
                continue
            pts = raw.setdefault(v.tag, [])
            step = float(event.step)
            if pts and step < pts[-1][0]:
                # restart from an earlier checkpoint: later points are orphaned (tensorboard's purge)
                while pts and pts[-1][0] >= step:
                    pts.pop()
            pts.append((step, val, float(event.wall_time)))


def read_scalars(summary_dir: str) -> Tuple[Dict[str, Series], List[str]]:
    """All scalars of one policy's summary dir: tag -> Series, plus notes about unreadable files."""
    notes: List[str] = []
    raw: Dict[str, List[Tuple[float, float, float]]] = {}
    for path in sorted(glob.glob(os.path.join(summary_dir, "events.out.tfevents.*")), key=_event_file_order):
        n_before = sum(len(v) for v in raw.values())
        try:
            _read_file(path, raw)
        except Exception as exc:  # noqa: BLE001 - a corrupt file must not stop the report
            notes.append(f"{path}: unreadable event file ({type(exc).__name__}: {exc}); points read before: kept")
        if sum(len(v) for v in raw.values()) == n_before and os.path.getsize(path) > 0:
            notes.append(f"{path}: no scalar summaries could be read")
    out = {}
    for tag, pts in raw.items():
        a = np.asarray(pts, dtype=np.float64)
        out[tag] = Series(a[:, 0], a[:, 1], a[:, 2])
    return out, notes


def policy_summary_dir(exp_dir: str, policy: int = 0) -> str:
    return os.path.join(exp_dir, ".summary", str(policy))


def scalar_points(exp_dir: str, tag: str, policy: int = 0) -> List[Tuple[int, float]]:
    """[(step, value)] of one tag of a policy of an experiment, [] when the tag is absent."""
    series = read_scalars(policy_summary_dir(exp_dir, policy))[0].get(tag)
    return [] if series is None else [(int(s), float(v)) for s, v in zip(series.steps, series.values)]
