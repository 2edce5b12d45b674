"""Which observation keys a model reads: the student's restriction and a teacher's inputs (privileged teachers).

With Dict observations (Sample Factory presents every env's observation as one; a flat one is `{"obs": ...}`):
  * the student can be restricted to a subset of the env's keys, `--student_obs_keys=obs[,task_id]`: its model,
    encoder and observation normaliser, is built on `restricted_space(env space, keys)` (`student_env_info`, what
    the learner and the inference workers build it from), so it has no weight and no normaliser statistic for any
    other key. The env, the buffers and the teachers still get every key. The restriction is part of the run's
    config, so wherever that experiment's model is rebuilt (evaluate, enjoy, as a teacher) it reads the same keys
    (`model_keys`).
  * a teacher reads the keys it was trained on, `model_keys(its config, the env it was trained on)`, each from the
    student env's observation: the key of the same name, or the one its obs map names (`TeacherSpec.obs_map`,
    teacher key -> student env key: `--teacher_obs_map=obs:state`, or `obs_map:` in a --teachers entry). Its own
    observation normaliser (from its checkpoint, keyed by its own names) applies to what it reads.
    `teacher_keys` checks that every such key exists in the student env with the teacher's shape and dtype before
    any worker starts (one TeacherError naming both sides) and the set-up pins the result (`TeacherSpec.obs_keys`);
    `teacher_view` is what a FrozenTeacher builds its model on and reads.

May import: gymnasium, the ground floor, `suites.base`, `teachers.spec`.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from gymnasium import spaces

from sf_kickstart.errors import UserError
from sf_kickstart.suites.base import cfg_value
from sf_kickstart.teachers.spec import OBS_MAP_FLAG, TeacherError, split_names

STUDENT_KEYS_FLAG = "--student_obs_keys"


class ObsKeysError(UserError):
    """`--student_obs_keys` names a key the env's observation does not have (or is not a list of names)."""


def describe_space(space) -> str:
    """`{key: Box(shape)/dtype, ...}` for a Dict, `Box(shape)/dtype` for a Box, `str(space)` otherwise."""
    if isinstance(space, spaces.Dict):
        return "{" + ", ".join(f"{k}: {describe_space(v)}" for k, v in space.spaces.items()) + "}"
    if isinstance(space, spaces.Box):
        return f"Box{tuple(space.shape)}/{space.dtype}"
    return str(space)


def as_dict(space) -> spaces.Dict:
    """The observation space as Sample Factory's model sees it: a Dict (a flat space is `{"obs": space}`)."""
    return space if isinstance(space, spaces.Dict) else spaces.Dict({"obs": space})


def restricted_space(space, keys: Optional[Sequence[str]], env: Optional[str] = None) -> spaces.Dict:
    """`space` (a Dict) with only `keys` (all of them when `keys` is empty or None). ObsKeysError naming the keys and
    the env's own keys with their spaces when one is not there."""
    space = as_dict(space)
    keys = list(keys or [])
    if not keys:
        return space
    missing = [k for k in keys if k not in space.spaces]
    if missing:
        where = f"the env {env!r}" if env else "the env"
        raise ObsKeysError(
            f"{STUDENT_KEYS_FLAG}={','.join(keys)}: {where} has no observation key {', '.join(map(repr, missing))}; "
            f"its observation keys: {describe_space(space)}"
        )
    return spaces.Dict({k: space[k] for k in keys})


def student_keys(cfg) -> List[str]:
    """The keys a run's student is restricted to (its `--student_obs_keys`; [] = every key)."""
    try:
        return split_names(cfg_value(cfg, "student_obs_keys"), STUDENT_KEYS_FLAG)
    except TeacherError as exc:
        raise ObsKeysError(str(exc)) from None


def model_keys(cfg, space, env: Optional[str] = None) -> List[str]:
    """The keys, sorted, that the model of a run with `cfg` reads from an env with observation `space`."""
    return sorted(restricted_space(space, student_keys(cfg), env).spaces)


def student_env_info(cfg, env_info):
    """SF's EnvInfo as the student's model must be built from: its observation space restricted to the run's
    `--student_obs_keys` (the same EnvInfo when there is no restriction)."""
    keys = student_keys(cfg)
    if not keys:
        return env_info
    return dataclasses.replace(env_info, obs_space=restricted_space(env_info.obs_space, keys, cfg_value(cfg, "env")))


MAP_HINT = (f"map each teacher key onto a student env key with {OBS_MAP_FLAG}=TEACHER_KEY:ENV_KEY (in a --teachers "
            f"entry: obs_map: {{TEACHER_KEY: ENV_KEY}})")


def teacher_view(keys: Sequence[str], obs_map: Mapping[str, str], student_space, what: str = "",
                 own: Optional[spaces.Dict] = None, env: Optional[str] = None) -> Tuple[List[str], spaces.Dict]:
    """For a teacher reading `keys` (its own names) through `obs_map`: the student env key of each, and the teacher's
    observation space (its names, the student env's spaces). TeacherError when a key is not in the student env,
    starting with `what` (e.g. "Teacher 'x'"), naming each missing key with its space in `own` (the teacher's, when
    known) and the student env `env`'s keys."""
    student_space = as_dict(student_space)
    source = [obs_map.get(k, k) for k in keys]
    missing = [(k, s) for k, s in zip(keys, source) if s not in student_space.spaces]
    if missing:
        def teacher_key(k, s):
            return f"{k!r}" + (f" {describe_space(own[k])}" if own is not None else "") + (
                f" (mapped to {s!r})" if s != k else "")

        env = f"the student env {env!r}" if env else "the student env"
        raise TeacherError(
            f"{what + ' ' if what else ''}observation space does not match the student's: the teacher reads "
            f"{', '.join(teacher_key(k, s) for k, s in missing)}, which {env} has not; its keys: "
            f"{describe_space(student_space)}{alike(own, [k for k, _ in missing], student_space)}; {MAP_HINT}"
        )
    return source, spaces.Dict({k: student_space[s] for k, s in zip(keys, source)})


def alike(own: Optional[spaces.Dict], keys: Sequence[str], student_space) -> str:
    """", the student env's keys with the space of the teacher's 'obs': [...] (e.g. --teacher_obs_map=obs:state)" for
    the first of the teacher's `keys` that a key of the student env matches; "" when none does (or `own`, the
    teacher's space, is unknown)."""
    for key in keys if own is not None else []:
        found = same_space_keys(own[key], student_space)
        if found:
            return (f", the student env's keys with the space of the teacher's {key!r}: {found} "
                    f"(e.g. {OBS_MAP_FLAG}={key}:{found[0]})")
    return ""


def same_space_keys(space, student_space) -> List[str]:
    """The keys of the student env's observation whose space a model reads like `space` (`same_box`)."""
    return [k for k, sp in as_dict(student_space).spaces.items() if same_box(space, sp)]


def suggested_obs_map(teacher_space, teacher_cfg, student_space) -> Dict[str, str]:
    """An obs map for a teacher whose keys the student env does not all have by name (with their spaces): each such
    key onto the first other student env key with its space; {} when every key fits by name or none can be mapped.
    What `alike` suggests in an error, as a map (e.g. {"obs": "state"} for a `mujoco_<task>` teacher on `_pomdp`)."""
    own = restricted_space(teacher_space, student_keys(teacher_cfg), cfg_value(teacher_cfg, "env"))
    student = as_dict(student_space)
    out = {}
    for key, space in own.spaces.items():
        if key in student.spaces and same_box(space, student[key]):
            continue
        found = [k for k in same_space_keys(space, student) if k != key]
        if found:
            out[key] = found[0]
    return out


def same_box(a, b) -> bool:
    """Two spaces a model reads alike: Boxes of one shape and dtype, or equal spaces."""
    if isinstance(a, spaces.Box) and isinstance(b, spaces.Box):
        return a.shape == b.shape and a.dtype == b.dtype
    return a == b


def teacher_keys(name: str, teacher_space, teacher_cfg, obs_map: Mapping[str, str], student_space,
                 student_env: str) -> List[str]:
    """The keys (sorted, its own names) teacher `name` reads, after checking each against the student env through
    `obs_map`: present, with the teacher's shape and dtype. `teacher_space` is the space of the env it was trained on,
    restricted here by its config's --student_obs_keys. One TeacherError naming the teacher's key and space and the
    student env's."""
    own = restricted_space(teacher_space, student_keys(teacher_cfg), cfg_value(teacher_cfg, "env"))
    keys = sorted(own.spaces)
    unknown = [k for k in obs_map if k not in own.spaces]
    if unknown:
        raise TeacherError(
            f"Teacher {name!r}: its obs map ({OBS_MAP_FLAG} or a --teachers entry's obs_map) names {unknown}, which "
            f"it does not read; it reads {describe_space(own)}"
        )
    source, seen = teacher_view(keys, obs_map, student_space, f"Teacher {name!r}", own, student_env)
    for key, env_key in zip(keys, source):
        if not same_box(own[key], seen[key]):
            raise TeacherError(
                f"Teacher {name!r} observation space does not match the student's: the teacher's key {key!r} is "
                f"{describe_space(own[key])} but key {env_key!r} of the student env {student_env!r} is "
                f"{describe_space(seen[key])}{alike(own, [key], student_space)}; {MAP_HINT}"
            )
    return keys


def add_args(parser) -> None:
    """`--student_obs_keys` and `--teacher_obs_map` (the map's parsing: `teachers.spec.parse_obs_map`)."""
    g = parser.add_argument_group("observation keys (privileged teachers)")
    g.add_argument(
        STUDENT_KEYS_FLAG, default=None, type=str,
        help="comma-separated Dict observation keys the student's model reads (its encoder and observation normaliser "
        "are built on them only; the env, the buffers and the teachers still get every key), e.g. obs for a "
        "mujoco_*_pomdp env whose privileged full state under 'state' only the teacher reads. Default: every key",
    )
    g.add_argument(
        OBS_MAP_FLAG, default=None, type=str,
        help="TEACHER_KEY:ENV_KEY[,...]: the single --teacher reads its observation key TEACHER_KEY from the student "
        "env's key ENV_KEY (e.g. obs:state: a teacher trained on mujoco_halfcheetah reads the full state of "
        "mujoco_halfcheetah_pomdp); other keys by their own name. A --teachers map entry takes obs_map: {obs: state}",
    )
