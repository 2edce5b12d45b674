"""The one checkpoint loader: every checkpoint sf_kickstart reads (teachers, zoo and Hub teachers, a resumed student,
evaluate, enjoy, Ray Tune members, SF's own learner and enjoy through `sf.fixes.learner.FixedLearner`) goes through
`load_checkpoint` (or `load_verified`, which also returns the sha256 of the bytes it loaded).

Unpickling a file runs whatever code it carries, so a checkpoint is loaded with `torch.load(weights_only=True)` and
`SAFE_GLOBALS`, the types beyond torch's defaults (tensors, OrderedDict, builtin containers and scalars) that Sample
Factory 2.1.1 and this project write. A file that needs any other global is refused, unread, with one
`UntrustedCheckpointError` naming the file and the types; no code in it runs. `--trust_checkpoint` (`TrustPolicy`)
lets a user load such a file with `weights_only=False` anyway: `True` for local files (their own checkpoints from an
older version, a local teacher), `hf://user/repo` for one Hugging Face Hub teacher. `True` never covers a file
downloaded from the Hub: that is someone else's file, trusted only by its name.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from sf_kickstart import hub
from sf_kickstart.errors import ExperimentError

# What Sample Factory 2.1.1 and sf_kickstart write beyond torch's weights_only defaults, found by saving real
# checkpoints and listing what they need (`torch.serialization.get_unsafe_globals_in_checkpoint`, then loading them):
# the latest and best checkpoints of a short plain-SF run (SF's own runner and learner, --lr_schedule=
# kl_adaptive_epoch), of an sf_kickstart run kickstarted by the zoo teacher, and the shipped zoo teacher (plain SF
# wrote it). All of them need numpy.core.multiarray.scalar and numpy.dtype, and loading needs the dtype's class,
# numpy.dtypes.Float64DType: SF stores `best_performance` as what `np.mean` of the episode stats returns. Float32DType:
# np.mean of float32 stats is a float32 (a --save_best_metric naming an env's float32 episode stat); read in SF's
# runner, not seen in these runs. Everything else (train_step, env_steps, curr_lr, model and optimizer state dicts,
# our "kickstart" weights and teacher-identity entries) is tensors, dicts, lists, str, int, float, bool and None.
SAFE_GLOBALS = [
    np.core.multiarray.scalar,
    np.dtype,
    np.dtypes.Float64DType,
    np.dtypes.Float32DType,
]

TRUST_FLAG = "--trust_checkpoint"
TRUST_HELP = (
    "load a checkpoint that needs types outside the safe allowlist (weights_only=False: code in it may run). "
    "True: local files (your own checkpoints from an older version, local teachers); hf://user/repo: that Hub teacher "
    "(True never covers Hub downloads); comma-separated to combine, e.g. True,hf://me/teacher. Default False: such a "
    "checkpoint is refused unread"
)


class CheckpointLoadError(ExperimentError):
    """A checkpoint that cannot be read, is not a Sample Factory checkpoint, or is not the file that was verified."""


class UntrustedCheckpointError(CheckpointLoadError):
    """A checkpoint that needs globals outside SAFE_GLOBALS, refused without running any of its code."""


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off", "", "none")


@dataclass(frozen=True)
class TrustPolicy:
    """What `--trust_checkpoint` allows: local files (`local`), and these Hub repositories (`hub`: "user/repo", any
    revision, or "user/repo@revision")."""

    local: bool = False
    hub: FrozenSet[str] = frozenset()

    @staticmethod
    def parse(value) -> "TrustPolicy":
        """From the flag's value (str, bool, None or a TrustPolicy); ValueError naming a token that is neither."""
        if isinstance(value, TrustPolicy):
            return value
        if value is None or isinstance(value, bool):
            return TrustPolicy(local=bool(value))
        local, hub = False, set()
        for token in str(value).split(","):
            token = token.strip()
            if token.startswith("hf://") and "/" in token[len("hf://"):].strip("/"):
                hub.add(token[len("hf://"):].strip("/"))
            elif token.lower() in _TRUE + _FALSE:
                local = local or token.lower() in _TRUE
            else:
                raise ValueError(f"{TRUST_FLAG} takes True, False or hf://user/repo[@revision], got {token!r}")
        return TrustPolicy(local, frozenset(hub))

    def allows(self, origin: Optional[Tuple[str, Optional[str]]]) -> bool:
        """Whether a file of this origin may be loaded unsafely: None (local) or (Hub repo id, revision)."""
        if origin is None:
            return self.local
        repo_id, revision = origin
        return repo_id in self.hub or (revision is not None and f"{repo_id}@{revision}" in self.hub)


def trust_arg(text: str) -> str:
    """argparse type of --trust_checkpoint: the value as given, once it parses."""
    try:
        TrustPolicy.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_trust_arg(parser) -> None:
    parser.add_argument(TRUST_FLAG, default="False", type=trust_arg, help=TRUST_HELP)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes (CheckpointLoadError when it cannot be read)."""
    return sha256_of(_read(path, ""))


def _read(path: str, hint: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise CheckpointLoadError(f"Checkpoint {path!r} could not be read ({exc}){hint}") from exc


def _unsafe_globals(data: bytes, exc: Exception) -> List[str]:
    """The globals outside the allowlist the file's pickle names, read statically (nothing is unpickled): torch's
    reader for its zip format, else the pickles themselves (`_pickle_globals`) and what torch's unpickler said."""
    import torch

    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data)))
    except Exception:  # noqa: BLE001 - not torch's zip format (a legacy torch file, a bare pickle, garbage)
        pass
    said = re.findall(r"GLOBAL (\S+) was not an allowed global|but got <class '([^']+)'>", str(exc))
    allowed = {f"{g.__module__}.{g.__name__}" for g in SAFE_GLOBALS} | {"collections.OrderedDict", "_codecs.encode"}
    found = {n for n in _pickle_globals(data) if n not in allowed and not n.startswith("torch.")}
    return sorted(found or {a or b for a, b in said})


_NAME = re.compile(r"^[A-Za-z_][\w.]*$")


def _pickle_globals(data: bytes) -> set:
    """The globals (GLOBAL, INST, STACK_GLOBAL) that the pickles at the start of `data` name, read by pickletools
    without unpickling; empty for data that does not start as a pickle."""
    import pickletools

    found, strings, stream = set(), [], io.BytesIO(data)
    try:
        while data[:1] == b"\x80" and stream.tell() < len(data):
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    found.add(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.add(".".join(strings[-2:]))
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # noqa: BLE001 - where the pickles end (a legacy file's raw storage bytes), reading stops
        pass
    return {n.replace("__builtin__.", "builtins.") for n in found if _NAME.match(n)}  # protocol 2 names builtins so


def _refusal(path: str, names: List[str], hint: str) -> UntrustedCheckpointError:
    origin = hub.hub_origin(path)
    if origin is None:
        how = f"If you trust this file (e.g. your own checkpoint from an older version), pass {TRUST_FLAG}=True"
    else:
        how = (f"It was downloaded from the Hugging Face Hub (hf://{origin[0]}): to load it anyway, pass "
               f"{TRUST_FLAG}=hf://{origin[0]} ({TRUST_FLAG}=True covers only local files)")
    return UntrustedCheckpointError(
        f"Checkpoint {path!r} needs {', '.join(names)}, outside the types Sample Factory and sf_kickstart checkpoints "
        f"hold: refused unread, no code in it ran. {how}{hint}"
    )


def _unpickle(path: str, data: bytes, device, hint: str, trust) -> object:
    """weights_only=True with SAFE_GLOBALS; weights_only=False only for a file that needs more and `trust` allows."""
    import torch
    from sample_factory.utils.utils import log

    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is unusable as it is
        names = _unsafe_globals(data, exc)
        if not names:
            raise CheckpointLoadError(f"Checkpoint {path!r} could not be loaded ({_reason(exc)}){hint}") from None
    if not TrustPolicy.parse(trust).allows(hub.hub_origin(path)):
        raise _refusal(path, names, hint)
    log.warning(f"Loading {path} with weights_only=False ({TRUST_FLAG}): it needs {', '.join(names)}")
    try:
        return torch.load(io.BytesIO(data), map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointLoadError(f"Checkpoint {path!r} could not be loaded ({_reason(exc)}){hint}") from exc


def _reason(exc: Exception) -> str:
    """One line: what torch's unpickler found wrong (not its advice to load with weights_only=False), else the
    exception's first line."""
    text = str(exc)
    said = re.search(r"WeightsUnpickler error:\s*(\S.*)", text)
    lines = text.strip().splitlines()
    line = said.group(1) if said else lines[0] if lines else ""
    return f"{type(exc).__name__}: " + line.split(". ")[0].rstrip(".")


def load_verified(
    path: str, device="cpu", hint: str = "", trust=None, sha256: Optional[str] = None
) -> Tuple[Dict, str]:
    """The SF checkpoint dict at `path` and the sha256 of the very bytes it was loaded from. CheckpointLoadError
    (with `hint` appended) when it cannot be read, is not an SF checkpoint, or its sha256 is not `sha256` (when
    given: the file changed since it was verified); UntrustedCheckpointError when it needs a type outside
    SAFE_GLOBALS that `trust` (a --trust_checkpoint value) does not allow."""
    data = _read(path, hint)
    if not data:
        raise CheckpointLoadError(f"Checkpoint {path!r} is empty (0 bytes){hint}")
    digest = sha256_of(data)
    if sha256 is not None and digest != sha256:
        raise CheckpointLoadError(
            f"Checkpoint {path!r} changed since it was verified (sha256 {sha256[:12]}, now {digest[:12]}){hint}"
        )
    ckpt = _unpickle(path, data, device, hint, trust)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise CheckpointLoadError(
            f"Checkpoint {path!r} is not a Sample Factory checkpoint (no 'model' state dict){hint}"
        )
    return ckpt, digest


def load_checkpoint(path: str, device="cpu", hint: str = "", trust=None, sha256: Optional[str] = None) -> Dict:
    """An SF checkpoint dict, loaded safely (`load_verified`)."""
    return load_verified(path, device, hint, trust, sha256)[0]
