"""What kickstarting adds to Sample Factory's storage: the teacher outputs in the buffers, the teacher state in
`rnn_states`, and `KickstartLayout`, the one description of both that the set-up validates and every worker reads.

Per-step keys are added to every trajectory buffer, policy-output slot and training batch (SF's `TensorDict`
copies only keys present on both sides, so each needs all three; `KickstartLayout.teacher_outputs`): `teacher_logits`
[num_logits: SF's number of action parameters of the space, its `action_logits` width], `teacher_idx` (index of the
teacher that produced them, -1 for a task without a teacher) and, with value distillation only
(`--kickstart_value_coeff` > 0), `teacher_values` (that teacher's value estimate of the step, in return units).
The teachers' recurrent state rides in the *tail* of SF's own `rnn_states` slot (width = student rnn size + max
teacher rnn size). SF's samplers already carry `rnn_states` from step to step and across trajectory boundaries and
zero it at episode ends, in batched and non-batched sampling and with any number of inference workers, so each env's
teacher state is kept and reset exactly like the student's, without touching SF's rollout code. The learner slices
the tail off before the student sees it.

May import: Sample Factory's buffer code, `kickstart` and `teachers` (for the layout's types).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from torch import Tensor

from sample_factory.algo.learning.batcher import Batcher
from sample_factory.algo.runners.runner import AlgoObserver
from sample_factory.algo.utils.shared_buffers import (
    alloc_policy_output_tensors,
    alloc_trajectory_tensors,
    init_tensor,
    policy_device,
)

from sf_kickstart.kickstart.loss import CROSS_ENTROPY, Head
from sf_kickstart.kickstart.schedules import KickstartSchedule
from sf_kickstart.teachers import TeacherRouting, TeacherSpec


@dataclass
class KickstartLayout:
    """A kickstarted run as `sf.setup.build_layout` validated it, handed to the buffers, the inference workers and
    the learner as it is (nothing here is rebuilt downstream). None of this exists in a plain run."""

    student_rnn: int
    teacher_rnn: int
    num_logits: int
    specs: List[TeacherSpec] = field(default_factory=list)  # pinned: each names the checkpoint file it was checked on
    routing: Optional[TeacherRouting] = None  # task -> teacher, over the suite's task list
    teacher_scores: Optional[List[float]] = None  # G_T,i per teacher (adaptive λ only)
    task_teacher_scores: Optional[List[Optional[float]]] = None  # G_T,k per task of `routing` (re-engaging λ only)
    schedule: Optional[KickstartSchedule] = None  # α over env frames (the run's flags)
    heads: Optional[List[Head]] = None  # the action heads of `action_logits`, in order (`sf.distillation`)
    loss: str = CROSS_ENTROPY  # --kickstart_loss, checked against the heads
    value_coeff: float = 0.0  # --kickstart_value_coeff (> 0: the teachers' values travel in the buffers)
    init_log_std: Optional[List[float]] = None  # --kickstart_init_stddev: a new student's learned log-std (per dim)
    untaught_entropy: float = 0.0  # --kickstart_untaught_entropy: c of the untaught tasks' entropy term (0: off)
    teacher_smoothing: float = 0.0  # --kickstart_teacher_smoothing: ε of the categorical target (0: off)

    @property
    def task_names(self) -> List[str]:
        return list(self.routing.task_names) if self.routing is not None else []

    @property
    def score_driven(self) -> bool:
        """λ follows the student's running scores (adaptive or re-engaging λ): the runner sends them to the learner."""
        return self.teacher_scores is not None or self.task_teacher_scores is not None

    @property
    def total_rnn(self) -> int:
        return self.student_rnn + self.teacher_rnn

    @property
    def teacher_values(self) -> bool:
        return self.value_coeff > 0

    @property
    def teacher_outputs(self) -> Dict[str, List[int]]:
        """The per-step keys of the buffers and their per-step shapes, in the order the flat outputs lay them out."""
        out = dict(teacher_logits=[self.num_logits], teacher_idx=[])
        if self.teacher_values:
            out["teacher_values"] = []
        return out


def teacher_tensors(lead, layout: KickstartLayout, device, share) -> Dict[str, Tensor]:
    """The teacher outputs for tensors of leading shape `lead` (a trajectory's [num_traj, rollout], a policy-output
    slot's [workers, splits, envs, agents])."""
    return {
        name: init_tensor(list(lead), torch.float32, shape, device, share)
        for name, shape in layout.teacher_outputs.items()
    }


def alloc_kickstart_trajectory_tensors(env_info, num_traj, rollout, layout: KickstartLayout, device, share):
    """SF's trajectory tensors, `rnn_states` as wide as student and teachers together, plus the teacher outputs."""
    tensors = alloc_trajectory_tensors(env_info, num_traj, rollout, layout.total_rnn, device, share)
    tensors.update(teacher_tensors([num_traj, rollout], layout, device, share))
    return tensors


def extend_buffers(buffer_mgr, cfg, env_info, layout: KickstartLayout) -> None:
    """Re-allocate SF's BufferMgr tensors with the kickstart keys (done once, in the main process, before any worker
    process is started; queues of free buffer indices are unchanged)."""
    share = not cfg.serial_mode
    extra_sizes = [shape[0] if shape else 1 for shape in layout.teacher_outputs.values()]  # SF's output_sizes rule
    for device, traj in list(buffer_mgr.traj_tensors_torch.items()):
        num_traj = traj["rewards"].shape[0]
        buffer_mgr.traj_tensors_torch[device] = alloc_kickstart_trajectory_tensors(
            env_info, num_traj, cfg.rollout, layout, device, share
        )
        outputs, names, sizes = alloc_policy_output_tensors(cfg, env_info, layout.total_rnn, device, share)
        if cfg.batched_sampling:  # a TensorDict: one tensor per output
            outputs.update(teacher_tensors(outputs["values"].shape, layout, device, share))
        else:  # one flat tensor, the outputs side by side (`output_names`, `output_sizes`)
            width = sum(sizes) + sum(extra_sizes)
            outputs = init_tensor(list(outputs.shape[:-1]), torch.float32, [width], device, share)
        buffer_mgr.policy_output_tensors_torch[device] = outputs
        buffer_mgr.output_names = tuple(names) + tuple(layout.teacher_outputs)
        buffer_mgr.output_sizes = tuple(sizes) + tuple(extra_sizes)


class KickstartBuffers(AlgoObserver):
    """Runs at the end of Runner.init(), right after SF builds its BufferMgr and before batchers/samplers exist."""

    def __init__(self, layout: KickstartLayout):
        self.layout = layout

    def on_init(self, runner) -> None:
        extend_buffers(runner.buffer_mgr, runner.cfg, runner.env_info, self.layout)


class KickstartBatcher(Batcher):
    """SF's batcher whose training batches hold the kickstart keys too (SF's `Batcher.init` allocates its own)."""

    def __init__(self, *args, layout: KickstartLayout, **kwargs):
        super().__init__(*args, **kwargs)
        self.layout = layout

    def init(self):
        """SF's training batches, widened before any trajectory can arrive (this slot runs on the batcher's own loop,
        which fills the batches): `rnn_states` as wide as student and teachers together, plus the teacher outputs."""
        super().init()
        device = policy_device(self.cfg, self.policy_id)
        for batch in self.training_batches:
            batch["rnn_states"] = init_tensor(
                list(batch["rnn_states"].shape[:-1]), torch.float32, [self.layout.total_rnn], device, False
            )
            batch.update(teacher_tensors(batch["rewards"].shape, self.layout, device, False))
