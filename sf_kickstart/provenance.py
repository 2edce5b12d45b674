"""Which teachers a run used, pinned: each teacher's identity goes into the student's config.json (cfg key
`IDENTITY_KEY`) and into every checkpoint the student writes (an entry of the same name), and a resumed run whose
teacher file changed stops with one error before any worker starts (a silently swapped teacher is a silently changed
experiment), unless `--kickstart_allow_teacher_change=True`.

A teacher's identity (one dict per teacher, in the order of the run's teachers):

    source      the teacher as the user gave it (`--teacher` or the map's path): a dir, zoo:NAME, hf://user/repo[@rev]
    path        the experiment directory it resolved to
    checkpoint  the checkpoint file used, relative to `path`
    sha256      sha256 of that file's bytes (the bytes the teacher was loaded from)
    revision    Hugging Face Hub: the revision asked for (None: the default branch); None for other teachers
    commit      Hugging Face Hub: the commit that was downloaded; None for other teachers (or when not recorded)
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

from sf_kickstart import hub
from sf_kickstart.errors import ExperimentError

IDENTITY_KEY = "kickstart_teacher_identity"
ALLOW_FLAG = "--kickstart_allow_teacher_change"
SHORT = 12  # hex digits of a hash as listings and reports show it


class TeacherChangedError(ExperimentError):
    """A resumed run's teacher is not the file the run started with."""


def short_hash(sha256: Optional[str]) -> str:
    return sha256[:SHORT] if sha256 else "-"


def teacher_identity(source: Optional[str], exp_dir: str, checkpoint: str, sha256: str) -> Dict:
    """The identity of a teacher loaded from `checkpoint` (a file in `exp_dir`) whose bytes hash to `sha256`."""
    record = hub.download_record(exp_dir) or {}
    exp_dir = os.path.abspath(exp_dir)
    return dict(
        source=source or exp_dir, path=exp_dir, checkpoint=os.path.relpath(os.path.abspath(checkpoint), exp_dir),
        sha256=sha256, revision=record.get("revision"), commit=record.get("commit"),
    )


def describe(identity: Dict) -> str:
    """'<source>: <checkpoint> sha256 <12 hex>[, Hub commit <12 hex>]'."""
    text = f"{identity.get('source')}: {identity.get('checkpoint')} sha256 {short_hash(identity.get('sha256'))}"
    if identity.get("commit"):
        text += f", Hub commit {short_hash(identity['commit'])}"
    return text


def changed_teachers(recorded: Sequence[Dict], current: Sequence[Dict]) -> List[str]:
    """One sentence per teacher (matched by source) whose checkpoint sha256 differs from the recorded one."""
    before = {r.get("source"): r for r in recorded if isinstance(r, dict)}
    out = []
    for now in current:
        was = before.get(now["source"])
        if was is not None and was.get("sha256") != now["sha256"]:
            out.append(f"teacher {now['source']!r} was {describe(was)} when the run started, now {describe(now)}")
    return out


def check_teachers(recorded, current: Sequence[Dict], allow_change: bool) -> None:
    """TeacherChangedError when a teacher of `current` is recorded (`recorded`: the run's config.json entry, None for
    a new run or one started before identities were recorded) with another sha256, unless `allow_change`."""
    from sample_factory.utils.utils import log

    changes = changed_teachers(recorded if isinstance(recorded, list) else [], current)
    if not changes:
        return
    if not allow_change:
        raise TeacherChangedError(
            f"This run's {'; '.join(changes)}. Resuming with another teacher changes the experiment: restore the "
            f"teacher's file, or pass {ALLOW_FLAG}=True to go on with the new one (it is then recorded)"
        )
    for change in changes:
        log.warning(f"{ALLOW_FLAG}: going on with a changed teacher: {change}")


def record_teachers(cfg, specs: Sequence, recorded) -> List[Dict]:
    """Check the run's teachers (loaded and pinned by sf.setup: `spec.checkpoint`, `spec.sha256`) against what the
    run recorded (`check_teachers`), then record them in cfg, whence config.json and the student's checkpoints."""
    current = [teacher_identity(s.source, s.path, s.checkpoint, s.sha256) for s in specs]
    check_teachers(recorded, current, bool(getattr(cfg, "kickstart_allow_teacher_change", False)))
    cfg[IDENTITY_KEY] = current
    return current


def add_args(parser) -> None:
    from sample_factory.utils.utils import str2bool

    parser.add_argument(
        ALLOW_FLAG, default=False, type=str2bool,
        help="resume although a teacher's checkpoint file changed since the run started (its sha256, recorded in "
        f"config.json as {IDENTITY_KEY}, differs); without it that is an error",
    )
