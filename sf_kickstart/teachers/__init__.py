"""Frozen teachers: which teacher supervises which task, loading and validating them, and running them.

`--teacher=DIR` is one teacher for every task. `--teachers=MAP.yaml` maps suite task names to teachers:

    DoorKey-5x5: doorkey_teacher                 # experiment dir (or name under --train_dir)
    DoorKey-8x8: {path: doorkey_teacher, rho: 0.5}
    MemoryS7:    {path: /abs/path/memory_teacher, policy: 0}

One teacher may serve several tasks (teachers are identified by their resolved directory); tasks absent from the map
get no kickstart term. ρ is per teacher (default 1).

Modules, one job each:
  spec     the map (`TeacherSpec`, `parse_teacher_map`, `teacher_specs_from_cfg`) and the one task -> teacher routing
           (`TeacherRouting`) used by the bank, the CPU kernel and the learner's per-task summaries;
  frozen   one teacher's experiment dir read once (`read_teacher` -> `TeacherFiles`), its model built and validated
           (`FrozenTeacher`, `check_spaces`): the reference forward pass;
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
    check_spaces,
    example_inputs,
    load_teacher_cfg,
    read_teacher,
)
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
    "FrozenTeacher", "KernelExecutor", "SingleTeacher", "StackedTeachers", "TeacherBank", "TeacherError",
    "TeacherFiles", "TeacherRouting", "TeacherSpec", "check_spaces", "example_inputs", "load_teacher_cfg",
    "parse_teacher_map", "read_teacher", "resolve_experiment_dir", "stack_signature", "teacher_specs_from_cfg",
]
