"""Bad input, as every command line of the project reports it (ground floor: imports nothing of the project).

Every error a user can cause — a wrong flag, a missing or unusable experiment or teacher, an env that cannot be
made here — derives from `UserError`. It is raised once, as the class that names what is wrong, with a sentence
that says what to do; nothing catches it to raise it again as another class. Each `main` of a `python -m
sf_kickstart.X` entry point catches `UserError` and hands it to `exit_status`: one line `sf_kickstart: error: ...`
on stderr, no traceback, exit code 2 (`UserError.exit_code`).
"""

from __future__ import annotations

import sys
from typing import Callable


class UserError(ValueError):
    """Input the program cannot use; its message is for the user. Exit code 2."""

    exit_code = 2


class ExperimentError(UserError):
    """An experiment directory, config or checkpoint that cannot be used (`sf_kickstart.experiments`)."""


#: how a caller wants a failure raised: a message -> the error (e.g. `ExperimentError`, or a `TeacherError` naming the
#: teacher), so the layer that finds the problem raises the right class once and no caller re-wraps it
Fail = Callable[[str], UserError]


def prefixed(what: str, error: type = ExperimentError, hint: str = "") -> Fail:
    """A `Fail` raising `error(f"{what} {message}{hint}")`, e.g. prefixed("Teacher", TeacherError)."""
    return lambda message: error(f"{what} {message}{hint}")


def exit_status(exc: UserError) -> int:
    """Print `exc` as the command line's one error line and return its exit code."""
    print(f"sf_kickstart: error: {exc}", file=sys.stderr)
    return exc.exit_code
