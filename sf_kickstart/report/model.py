"""What the report reads experiments into (no disk access): an `Experiment` (one Sample Factory experiment dir, or one
Ray Tune population whose policies are its members), a `Unit` (one learning curve: a policy of an experiment), and the
naming that groups experiments into methods and seeds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from sf_kickstart.events import Series

_SEED_RES = (re.compile(r"^(?P<m>.+)_seed_?(?P<s>\d+)$"), re.compile(r"^(?P<m>.+)_see_(?P<s>\d+)$"))
_SF_INDEX_RE = re.compile(r"^\d{2}_(?=.)")


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
