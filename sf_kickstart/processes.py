"""`python -m sf_kickstart.train ARGS` (or another of the project's modules) in a subprocess, with the working directory
and the repository on PYTHONPATH (ground floor: imports `paths` only). The one way the Ray Tune members, the benchmarks
and the tests start a run: `run_train` waits for it, `start_train` leaves it running in the background.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

from sf_kickstart.paths import REPO_ROOT

TRAIN_MODULE = "sf_kickstart.train"


def python_path(*first: str) -> str:
    """A PYTHONPATH of `first` (e.g. the directory whose modules a run imports), the repository, then the inherited
    PYTHONPATH, each entry once."""
    entries = [*first, REPO_ROOT, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return os.pathsep.join(dict.fromkeys(p for p in entries if p))


def python_env(cwd: str = REPO_ROOT, extra_env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """This process's environment with `cwd` and the repository first on PYTHONPATH, updated with `extra_env` (which
    may set a PYTHONPATH of its own)."""
    env = dict(os.environ, PYTHONPATH=python_path(cwd))
    env.update(extra_env or {})
    return env


def run_python(args: Sequence[str], log_path: Optional[str] = None, timeout: Optional[float] = None,
               check: bool = False, cwd: str = REPO_ROOT, python: str = sys.executable, append: bool = False,
               extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """`python ARGS` in `cwd` (the repository root by default), its environment `python_env(cwd, extra_env)`.
    log_path: stdout and stderr go there (append: after what it holds, under a `=== command` line), else they are
    captured as text. check: RuntimeError on a non-zero exit."""
    cmd = [python, *args]
    env = python_env(cwd, extra_env)
    if log_path is None:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)  # a benchmark's new train_dir
        with open(log_path, "a" if append else "w") as log:
            if append:
                log.write(f"\n=== {' '.join(cmd)}\n")
                log.flush()
            proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"training failed (rc={proc.returncode})" + (f", see {log_path}" if log_path else ""))
    return proc


def run_train(args: Sequence[str], log_path: Optional[str] = None, timeout: Optional[float] = None,
              module: str = TRAIN_MODULE, **kwargs) -> subprocess.CompletedProcess:
    """`python -m sf_kickstart.train ARGS` (or `module`), waited for: see `run_python` for the other arguments."""
    return run_python(["-m", module, *args], log_path, timeout, **kwargs)


def start_train(args: Sequence[str], log_path: str, module: str = TRAIN_MODULE, cwd: str = REPO_ROOT,
                extra_env: Optional[Dict[str, str]] = None, **popen_kwargs) -> subprocess.Popen:
    """`python -m sf_kickstart.train ARGS` (or `module`) in the background, stdout and stderr into log_path (no pipe
    to fill up); `popen_kwargs` go to `subprocess.Popen` (e.g. preexec_fn)."""
    cmd: List[str] = [sys.executable, "-m", module, *args]
    with open(log_path, "w") as log_file:
        return subprocess.Popen(cmd, cwd=cwd, env=python_env(cwd, extra_env), stdout=log_file,
                                stderr=subprocess.STDOUT, **popen_kwargs)
