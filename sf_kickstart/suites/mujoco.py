"""Continuous control: Sample Factory's MuJoCo envs under their SF names, and partially observed variants of the same
tasks whose full state is kept under a privileged key for a teacher.

Env names (``--env=...``):
    ``mujoco_<task>``        Sample Factory's own env (``sf_examples.mujoco.mujoco_utils.MUJOCO_ENVS``: ``mujoco_ant``,
                             ``mujoco_halfcheetah``, ``mujoco_hopper``, ``mujoco_humanoid``, ``mujoco_walker``,
                             ``mujoco_swimmer``, ``mujoco_reacher``, ``mujoco_pusher``, ``mujoco_pendulum``,
                             ``mujoco_doublependulum``, ``mujoco_standup``; gymnasium's ``*-v4``), made by SF's
                             ``make_mujoco_env`` unchanged: a flat float64 Box observation (SF presents it as
                             ``{"obs": ...}``), Box actions. A teacher trained by plain Sample Factory's
                             ``sf_examples.mujoco`` loads here as is. ``mujoco_swimmer`` needs mujoco<3
                             (``NEEDS_MUJOCO_2``: gymnasium 0.29.1's swimmer.xml does not load in MuJoCo 3).
    ``mujoco_<task>_pomdp``  the same task, partially observed, with the full state for a privileged teacher
                             (``base.PrivilegedObservation`` around SF's env): a Dict observation
                               ``"obs"``    the observation without its velocities (``HIDDEN[task]``): the student's;
                               ``"state"``  the full observation, identical (space and values) to ``mujoco_<task>``'s
                                            ``"obs"``: the privileged teacher's.
                             Without velocities the task needs memory: train the student recurrent
                             (``cfg/mujoco_pomdp_student.yaml``) and restrict it with ``--student_obs_keys=obs`` so its
                             model never reads ``state``. A teacher trained on ``mujoco_<task>`` reads its ``obs`` from
                             ``state``: ``--teacher_obs_map=obs:state``.

Hidden indices (gymnasium 0.29.1's ``*_v4.py`` ``_get_obs``, default arguments: current x/y positions excluded,
Ant without contact forces). Every hidden block is a velocity (``qvel``, clipped where gymnasium clips it, and
Humanoid's centre-of-mass velocities ``cvel``); what stays is positions, angles and position-derived terms:

    task             obs layout                                                         size  hidden      partial
    hopper           qpos[1:] 5, clip(qvel) 6                                             11  5:11        5
    halfcheetah      qpos[1:] 8, qvel 9                                                   17  8:17        8
    walker           qpos[1:] 8, clip(qvel) 9                                             17  8:17        8
    ant              qpos[2:] 13, qvel 14                                                 27  13:27       13
    humanoid         qpos[2:] 22, qvel 23, cinert 140, cvel 84, qfrc_actuator 23,        376  22:45,      269
                     cfrc_ext 84                                                              185:269
    standup          as humanoid                                                         376  22:45,      269
                                                                                              185:269
    swimmer          qpos[2:] 3, qvel 5                                                    8  3:8         3
    pendulum         qpos 2, qvel 2                                                        4  2:4         2
    doublependulum   qpos[:1] 1, sin(qpos[1:]) 2, cos(qpos[1:]) 2, clip(qvel) 3,          11  5:8         8
                     clip(qfrc_constraint) 3
    reacher          cos(qpos[:2]) 2, sin(qpos[:2]) 2, qpos[2:] 2, qvel[:2] 2,            11  6:8         9
                     fingertip - target 3
    pusher           qpos[:7] 7, qvel[:7] 7, tips_arm 3, object 3, goal 3                 23  7:14        16

Rendering (a video: ``sf_kickstart.enjoy --save_video``) goes through one of MuJoCo's OpenGL backends, which
``MUJOCO_GL`` chooses (MuJoCo and gymnasium read it when they render): ``egl`` (headless, libEGL: Mesa's or the
NVIDIA driver's), ``osmesa`` (headless, software: libOSMesa) or ``glfw`` (a window: needs a display).
``prepare_rendering(env)`` checks it before anything is played: with ``MUJOCO_GL`` set, that backend; without, the
first of glfw (only with a ``DISPLAY``), egl, osmesa that renders a frame, then set for this process. Each is tried in
a fresh process (a backend that fails to load leaves PyOpenGL unusable for another one in the same process). None
works: one SuiteError naming ``MUJOCO_GL``, what each backend said, and what to install. Training needs no GL.

Defaults: every ``mujoco_*`` env gets Sample Factory's own MuJoCo flag defaults (``sf_examples.mujoco.mujoco_params``:
MLP 64x64 tanh, no RNN, ``adaptive_stddev=False``, PPO/GAE, ``async_rl=False``, rollout 64, batch 1024, lr 0.00295
with linear decay, normalised inputs and returns); presets and the command line override them. One task per env:
``task_names(env) == [env]``, no task id, no suite score (evaluation scores the mean return).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import Dict, List, Optional, Tuple

from sample_factory.algo.utils.context import global_env_registry
from sample_factory.envs.env_utils import register_env
from sample_factory.utils.utils import is_module_available
from sf_examples.mujoco.mujoco_params import mujoco_override_defaults
from sf_examples.mujoco.mujoco_utils import MUJOCO_ENVS, make_mujoco_env

from sf_kickstart.processes import run_python
from sf_kickstart.suites.base import PrivilegedObservation
from sf_kickstart.suites.registry import SuiteError

ENV_PREFIX = "mujoco_"
POMDP_SUFFIX = "_pomdp"

#: SF's env names (``mujoco_<task>``), in SF's order -> gymnasium id
SF_ENVS: Dict[str, str] = {spec.name: spec.env_id for spec in MUJOCO_ENVS}

_HUMANOID_VELOCITIES = ((22, 45), (185, 269))  # qvel (23), cvel (84); see the table in the module docstring
#: SF name -> the [start, stop) blocks of its observation that hold velocities (hidden from a pomdp variant's "obs")
VELOCITY_BLOCKS: Dict[str, Tuple[Tuple[int, int], ...]] = {
    "mujoco_hopper": ((5, 11),),
    "mujoco_halfcheetah": ((8, 17),),
    "mujoco_humanoid": _HUMANOID_VELOCITIES,
    "mujoco_ant": ((13, 27),),
    "mujoco_standup": _HUMANOID_VELOCITIES,
    "mujoco_doublependulum": ((5, 8),),
    "mujoco_pendulum": ((2, 4),),
    "mujoco_reacher": ((6, 8),),
    "mujoco_walker": ((8, 17),),
    "mujoco_pusher": ((7, 14),),
    "mujoco_swimmer": ((3, 8),),
}
assert set(VELOCITY_BLOCKS) == set(SF_ENVS), "a MuJoCo env of Sample Factory without its velocity blocks"

#: SF envs gymnasium 0.29.1 cannot make with MuJoCo >= 3: its swimmer.xml sets `<option collision="predefined">`, an
#: attribute MuJoCo 3.0 removed ("XML Error: Schema violation: unrecognized attribute: 'collision'"); gymnasium 1.x
#: fixed it, out of reach of Sample Factory 2.1.1's gymnasium<1.0 pin
NEEDS_MUJOCO_2 = ("mujoco_swimmer",)

POMDP_ENVS: List[str] = [name + POMDP_SUFFIX for name in SF_ENVS]
ENV_NAMES: List[str] = list(SF_ENVS) + POMDP_ENVS


def validate_env_name(env_name: str) -> str:
    """The SF env name (``mujoco_<task>``) that `env_name` plays; SuiteError for an unknown one."""
    base = env_name[: -len(POMDP_SUFFIX)] if env_name.endswith(POMDP_SUFFIX) else env_name
    if base not in SF_ENVS:
        raise SuiteError(f"Unknown MuJoCo env {env_name!r}: expected one of {', '.join(ENV_NAMES)}")
    return base


def hidden_indices(env_name: str) -> List[int]:
    """Indices of the full observation of `env_name`'s task that its pomdp variant hides from "obs"."""
    return [i for start, stop in VELOCITY_BLOCKS[validate_env_name(env_name)] for i in range(start, stop)]


def check_available(env_name: str) -> None:
    """mujoco and imageio import (SuiteError naming what to install), MuJoCo imports with this MUJOCO_GL (importing it
    loads that OpenGL backend: a missing one fails every command, SuiteError naming MUJOCO_GL), the env loads in this
    MuJoCo (NEEDS_MUJOCO_2)."""
    base = validate_env_name(env_name)
    missing = [] if is_module_available("imageio") else ["imageio"]
    try:
        importlib.import_module("mujoco")
    except Exception as exc:  # noqa: BLE001 - MuJoCo's GL backend may fail with any error
        gl = os.environ.get(GL_VAR, "").strip()
        if gl and importlib.util.find_spec("mujoco") is not None:
            raise SuiteError(
                f"{env_name!r}: MuJoCo does not import with MUJOCO_GL={gl} ({type(exc).__name__}: {exc}): importing it "
                f"loads that OpenGL backend. Training needs none: unset MUJOCO_GL (or MUJOCO_GL=disable). To record a "
                f"video, {GL_INSTALL}"
            ) from None
        missing.insert(0, "mujoco")
    if missing:
        raise SuiteError(f"{env_name!r} needs {' and '.join(missing)}: pip install mujoco==3.1.6 imageio==2.38.2")
    version = importlib.metadata.version("mujoco")
    if base in NEEDS_MUJOCO_2 and int(version.split(".")[0]) >= 3:
        raise SuiteError(
            f"{env_name!r}: gymnasium 0.29.1's {SF_ENVS[base]} model sets <option collision=...>, which MuJoCo "
            f"{version} refuses (removed in MuJoCo 3.0); it needs mujoco<3 (e.g. 2.3.7). The other mujoco_* envs work"
        )


def make_mujoco_pomdp_env(full_env_name: str, cfg=None, env_config=None, render_mode: Optional[str] = None):
    """Sample Factory env factory of ``mujoco_<task>_pomdp``: SF's own env, its observation split into the partial
    "obs" and the full "state" (module level: SF pickles the registry into its spawned workers)."""
    base = validate_env_name(full_env_name)
    return PrivilegedObservation(make_mujoco_env(base, cfg, env_config, render_mode=render_mode), hidden_indices(base))


def register(env_name: str) -> None:
    """Register every ``mujoco_<task>`` (SF's factory) and ``mujoco_<task>_pomdp`` with Sample Factory."""
    validate_env_name(env_name)
    registry = global_env_registry()
    for name in ENV_NAMES:
        factory = make_mujoco_pomdp_env if name.endswith(POMDP_SUFFIX) else make_mujoco_env
        if registry.get(name) is not factory:  # re-registering only logs a warning in SF
            register_env(name, factory)


def override_defaults(env_name: str, parser) -> None:
    """Sample Factory's own MuJoCo defaults (sf_examples/mujoco/mujoco_params.py) for every mujoco_* env."""
    mujoco_override_defaults(env_name, parser)


def task_names(env_name: str) -> List[str]:
    validate_env_name(env_name)
    return [env_name]


def scored_as(env_name: str) -> str:
    """``mujoco_<task>`` for ``mujoco_<task>`` and its ``_pomdp`` variant: the same dynamics and reward (only the
    observation differs), so their returns compare (a privileged teacher's return is its pomdp student's target)."""
    return validate_env_name(env_name)



# ---------------------------------------------------------------------------------------------------------- rendering
GL_VAR = "MUJOCO_GL"
#: MuJoCo's headless OpenGL backends (values of MUJOCO_GL), tried in this order when it is not set
HEADLESS_GL = ("egl", "osmesa")
GL_INSTALL = (
    "install one: EGL (apt-get install libegl1 libgl1, or the NVIDIA driver's libEGL) and run with MUJOCO_GL=egl, or "
    "OSMesa (apt-get install libosmesa6) and run with MUJOCO_GL=osmesa; glfw (MUJOCO_GL=glfw) needs a display"
)
#: renders one 16x16 frame of a one-geom model with the backend MUJOCO_GL names; prints why not on one line
GL_PROBE = """
import os, sys
try:
    import mujoco
    model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='0.1'/></worldbody></mujoco>")
    renderer = mujoco.Renderer(model, 16, 16)
    renderer.update_scene(mujoco.MjData(model))
    assert renderer.render().shape == (16, 16, 3)
except BaseException as exc:
    print(f"{type(exc).__name__}: {exc}".splitlines()[0][:300], flush=True)
    os._exit(1)
os._exit(0)
"""


def gl_failure(backend: str) -> Optional[str]:
    """None when MuJoCo renders a frame with MUJOCO_GL=`backend` (tried in a fresh process), else why not."""
    try:
        proc = run_python(["-c", GL_PROBE], timeout=120, extra_env={GL_VAR: backend})
    except Exception as exc:  # noqa: BLE001 - e.g. a backend that hangs
        return f"{type(exc).__name__}: {exc}"
    if proc.returncode == 0:
        return None
    lines = proc.stdout.strip().splitlines() or proc.stderr.strip().splitlines()  # the probe's own line first
    return lines[-1] if lines else f"exit code {proc.returncode}"


def prepare_rendering(env_name: str) -> str:
    """Before a MuJoCo env renders rgb frames (a video): the OpenGL backend that works, set as MUJOCO_GL for this
    process (module docstring); SuiteError naming MUJOCO_GL, each backend tried and what to install when none does."""
    validate_env_name(env_name)
    chosen = os.environ.get(GL_VAR, "").strip()
    candidates = [chosen] if chosen else (["glfw"] if os.environ.get("DISPLAY") else []) + list(HEADLESS_GL)
    failures = {}
    for backend in candidates:
        failures[backend] = gl_failure(backend)
        if failures[backend] is None:
            os.environ[GL_VAR] = backend
            return backend
    tried = "; ".join(f"MUJOCO_GL={b}: {why}" for b, why in failures.items())
    where = tried if chosen else f"MUJOCO_GL is not set, and no backend renders: {tried}"
    raise SuiteError(
        f"{env_name!r} renders its video frames through one of MuJoCo's OpenGL backends (MUJOCO_GL), and it cannot "
        f"render here ({where}). To record a video, {GL_INSTALL}. Without a video: --no_render"
    )
