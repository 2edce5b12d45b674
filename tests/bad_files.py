"""Bad files for the security and fuzz tests: checkpoints that are not checkpoints (or carry code), and a record of a
directory tree's files to show that nothing a user had was changed.

`Payload(marker)` pickles as `exec("open(marker, 'w')...")`: unpickling it anywhere (weights_only=False) writes the
marker file, so a test that finds the marker absent afterwards has shown that the file's code did not run.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from typing import Callable, Dict

import numpy as np
import torch


class Payload:
    """Unpickles as code that writes `marker` (a Python builtin: resolvable in any process)."""

    def __init__(self, marker: str):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('the checkpoint ran code')",)


def torch_bytes(obj, zipfile: bool = True) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=zipfile)
    return buf.getvalue()


#: name -> (bytes of a bad checkpoint given a good checkpoint's bytes and a marker path, a fragment of its one error)
BAD_CHECKPOINTS: Dict[str, tuple] = {
    "empty": (lambda good, marker: b"", "is empty"),
    "truncated": (lambda good, marker: good[: len(good) // 2], "could not be loaded"),
    "random_bytes": (lambda good, marker: np.random.default_rng(0).bytes(4096), "could not be loaded"),
    "a_list": (lambda good, marker: torch_bytes([1, 2, 3]), "not a Sample Factory checkpoint"),
    "dict_without_model": (
        lambda good, marker: torch_bytes(dict(train_step=1, env_steps=100, optimizer={})),
        "not a Sample Factory checkpoint",
    ),
    "payload_torch_zip": (
        lambda good, marker: torch_bytes(dict(train_step=1, env_steps=100, model={}, extra=Payload(marker))),
        "builtins.exec",
    ),
    "payload_legacy_torch": (
        lambda good, marker: torch_bytes(dict(model={}, extra=Payload(marker)), zipfile=False), "builtins.exec"
    ),
    "payload_bare_pickle": (lambda good, marker: pickle.dumps(dict(model=Payload(marker))), "builtins.exec"),
}

PAYLOADS = [name for name in BAD_CHECKPOINTS if name.startswith("payload")]


def write_bad_checkpoint(path: str, kind: str, good: bytes, marker: str) -> str:
    """Write the bad checkpoint `kind` at `path`; returns the fragment its error must contain."""
    make, fragment = BAD_CHECKPOINTS[kind]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(make(good, marker))
    return fragment


#: name -> (config.json text, a fragment of its one error)
BAD_CONFIGS: Dict[str, tuple] = {
    "not_json": ('{"env": "minigrid_suite", ', "is not valid JSON"),
    "not_an_object": ('["env", "minigrid_suite"]', "is not a JSON object"),
    "unknown_env": ('{"env": "nosuchsuite_level1"}', "nosuchsuite_level1"),
}


def tree_hashes(root: str) -> Dict[str, str]:
    """relative path -> sha256 of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def assert_untouched(root: str, before: Dict[str, str], may_add: Callable[[str], bool] = lambda rel: False) -> None:
    """Every file that was under root is still there with the same bytes; new files only where `may_add` says."""
    after = tree_hashes(root)
    changed = [rel for rel, sha in before.items() if after.get(rel) != sha]
    added = [rel for rel in after if rel not in before and not may_add(rel)]
    assert not changed and not added, f"files changed: {changed}, files added: {added}"
