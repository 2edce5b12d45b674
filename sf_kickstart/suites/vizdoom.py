"""ViZDoom envs (``--env=doom_*``) through Sample Factory's own example, ``sf_examples.vizdoom``.

Everything is delegated: ``register_vizdoom_components`` (every ``DOOM_ENVS`` scenario and the Doom encoder),
``add_doom_env_args`` and ``doom_override_defaults``. Each Doom scenario is a single task with its own action space;
``task_names(env) == [env]``.

ViZDoom is optional: ``pip install vizdoom==1.3.2`` (it needs the system packages listed at
https://github.com/Farama-Foundation/ViZDoom, e.g. ``cmake libboost-all-dev libsdl2-dev`` when pip builds it from
source). ``sf_examples.vizdoom.doom.doom_utils`` imports ``vizdoom`` at its top, so it is imported lazily here.
"""

from __future__ import annotations

from typing import List

from sf_kickstart.suites.registry import SuiteError

INSTALL_HINT = (
    "ViZDoom is not installed: pip install vizdoom==1.3.2 "
    "(system packages for a source build: see https://github.com/Farama-Foundation/ViZDoom)"
)


def _doom_env_names() -> List[str]:
    from sf_examples.vizdoom.doom.doom_utils import DOOM_ENVS  # imports vizdoom

    return [spec.name for spec in DOOM_ENVS]


def check_available(env: str) -> None:
    try:
        import vizdoom  # noqa: F401
    except ImportError as e:
        raise SuiteError(f"{env!r} needs ViZDoom. {INSTALL_HINT} ({e})") from e
    names = _doom_env_names()
    if env not in names:
        raise SuiteError(f"Unknown ViZDoom env {env!r}: expected one of {', '.join(names)}")


def register(env: str) -> None:
    check_available(env)
    from sf_examples.vizdoom.train_vizdoom import register_vizdoom_components

    register_vizdoom_components()


def add_args(parser) -> None:
    from sf_examples.vizdoom.doom.doom_params import add_doom_env_args  # does not import vizdoom

    add_doom_env_args(parser)


def override_defaults(env: str, parser) -> None:
    from sf_examples.vizdoom.doom.doom_params import doom_override_defaults

    doom_override_defaults(parser)


def task_names(env: str) -> List[str]:
    return [env]
