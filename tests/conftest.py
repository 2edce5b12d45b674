"""The two test lanes, and the rule that keeps them apart.

`python -m pytest -m "not e2e"` is the fast lane: units and in-process checks, a few minutes on 2 cores.
`python -m pytest` is the full suite, as CI runs it.

Rule: a test that starts a `python -m sf_kickstart.*` process, trains (a Python process that runs Sample Factory's
`run_rl` or our `sf_kickstart.train`), or starts a real Sample Factory runner in-process is marked
`@pytest.mark.e2e` (or `pytestmark = pytest.mark.e2e` for a whole file). For every test not so marked, from the
set-up of its fixtures to their tear-down, `subprocess.Popen` (which `subprocess.run` and friends go through) refuses
such a command line and `Runner.init` refuses to start; the test fails with a message saying what it started, even
when it catches the error, so the rule cannot regress silently. Other processes (git, `bash -n`, `python -c` that only
imports a module) are allowed.
"""

from __future__ import annotations

import shlex
import subprocess
from typing import List, Optional, Sequence

import pytest

E2E_ONLY = pytest.StashKey[List[str]]()
TRAINING_CODE = ("run_rl", "sf_kickstart.train", "sample_factory.train")  # in `python -c` code: a training run


class E2EOnlyError(RuntimeError):
    """A test not marked e2e started what only an e2e test may start."""


def _tokens(args) -> List[str]:
    if isinstance(args, (str, bytes)):
        text = args.decode() if isinstance(args, bytes) else args
        try:
            return shlex.split(text)
        except ValueError:
            return text.split()
    return [a.decode() if isinstance(a, bytes) else str(a) for a in args]


def e2e_only_reason(args) -> Optional[str]:
    """Why this command line may only run in an e2e test, or None when any test may run it."""
    tokens = _tokens(args)
    for flag, value in zip(tokens, tokens[1:]):
        if flag == "-m" and value.split(".")[0] == "sf_kickstart":
            return f"it starts `python -m {value}`"
        if flag == "-c" and any(code in value for code in TRAINING_CODE):
            return "it starts a Python process that trains"
    return None


def _refuse(item: pytest.Item, what: str) -> None:
    message = (f"{item.nodeid} is not marked e2e but {what}: mark it `@pytest.mark.e2e` (the fast lane "
               f"`-m \"not e2e\"` runs no sf_kickstart process and no training)")
    item.stash.setdefault(E2E_ONLY, []).append(message)
    raise E2EOnlyError(message)


def _guard(item: pytest.Item, patch: pytest.MonkeyPatch) -> None:
    real_popen = subprocess.Popen

    class GuardedPopen(real_popen):  # a subclass: `isinstance(p, subprocess.Popen)` and `Popen[...]` keep working
        def __init__(self, args: Sequence, *rest, **kwargs):
            reason = e2e_only_reason(args)
            if reason:
                _refuse(item, f"{reason} ({' '.join(_tokens(args))[:200]})")
            super().__init__(args, *rest, **kwargs)

    patch.setattr(subprocess, "Popen", GuardedPopen)

    from sample_factory.algo.runners.runner import Runner

    def refused_init(self, *args, **kwargs):
        _refuse(item, f"it starts a Sample Factory runner ({type(self).__name__}.init)")

    patch.setattr(Runner, "init", refused_init)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """The guard is up for the whole test, its fixtures' set-up and tear-down included (a module-scoped fixture is
    set up by the first test of the module that uses it)."""
    patch = None
    if item.get_closest_marker("e2e") is None:
        patch = pytest.MonkeyPatch()
        _guard(item, patch)
    try:
        yield
    finally:
        if patch is not None:
            patch.undo()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """A test that caught the refusal and passed anyway fails all the same."""
    outcome = yield
    report = outcome.get_result()
    refused = item.stash.get(E2E_ONLY, [])
    if refused and report.passed and report.when in ("setup", "call"):
        report.outcome = "failed"
        report.longrepr = "\n".join(refused)
