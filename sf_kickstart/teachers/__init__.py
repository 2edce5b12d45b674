"""Frozen teachers: which teacher supervises which task, loading and validating them, and running them.

`--teacher=DIR` is one teacher for every task. `--teachers=MAP.yaml` maps suite task names to teachers:

    DoorKey-5x5: doorkey_teacher                 # experiment dir (or name under --train_dir)
    DoorKey-8x8: {path: doorkey_teacher, rho: 0.5}
    MemoryS7:    {path: /abs/path/memory_teacher, policy: 0}
    mujoco_halfcheetah_pomdp: {path: cheetah_teacher, obs_map: {obs: state}}   # reads its "obs" from "state"

One teacher may serve several tasks (teachers are identified by their resolved directory); tasks absent from the map
get no kickstart term. ρ is per teacher (default 1). A privileged teacher reads keys the student does not see
(`obs_map: {obs: state}` in an entry, `--teacher_obs_map=obs:state` for --teacher; `inputs`).

Modules, one job each:
  spec     the map (`TeacherSpec`, `parse_teacher_map`, `teacher_specs_from_cfg`) and the one task -> teacher routing
           (`TeacherRouting`) used by the bank, the CPU kernel and the learner's per-task summaries;
  frozen   one teacher's experiment dir read once (`read_teacher` -> `TeacherFiles`), its model built and validated
           (`FrozenTeacher`, `check_action_space`): the reference forward pass;
  inputs   which observation keys a model reads: the student's `--student_obs_keys` restriction, a teacher's keys and
           their map onto the student env's keys, checked key by key (`teacher_keys`, `restricted_space`);
  stacked  which teachers can run as one computation (`stack_signature`) and the torch executor for them
           (`StackedTeachers`);
  kernel   the optional numba CPU executor built from a stacked layout (`KernelExecutor`), with named kernel inputs;
  bank     `TeacherBank`: every teacher of a run behind one `forward`, over its executors.

May import: Sample Factory's model code, the ground floor, `suites.registry` (the task-id key). Never `sf`, `agents`
or anything above.
"""

from sf_kickstart.teachers.bank import SingleTeacher, TeacherBank
from sf_kickstart.teachers.frozen import (
    FrozenTeacher,
    TeacherFiles,
    check_action_space,
    example_inputs,
    load_teacher_cfg,
    read_teacher,
)
from sf_kickstart.teachers.inputs import ObsKeysError, restricted_space, student_env_info, teacher_keys
from sf_kickstart.teachers.kernel import KernelExecutor
from sf_kickstart.teachers.spec import (
    TeacherError,
    TeacherRouting,
    TeacherSpec,
    parse_teacher_map,
    resolve_experiment_dir,
    teacher_specs_from_cfg,
)
from sf_kickstart.teachers.stacked import StackedTeachers, stack_signature

__all__ = [
    "FrozenTeacher", "KernelExecutor", "ObsKeysError", "SingleTeacher", "StackedTeachers", "TeacherBank", "TeacherError",
    "TeacherFiles", "TeacherRouting", "TeacherSpec", "check_action_space", "example_inputs", "load_teacher_cfg",
    "parse_teacher_map", "read_teacher", "resolve_experiment_dir", "restricted_space", "stack_signature",
    "student_env_info", "teacher_keys", "teacher_specs_from_cfg",
]
