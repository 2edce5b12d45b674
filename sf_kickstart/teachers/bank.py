"""The teacher bank: every frozen teacher of a run, routed by task id, behind one `forward`.

Executors. The bank runs its teachers through executors, each serving a group of teachers (`members`, bank indices)
with `forward(obs, rnn_states, member) -> (logits, new rnn states)`, member[i] being row i's index into `members`:
  * `SingleTeacher`: one FrozenTeacher's own (traced) forward — any architecture;
  * `StackedTeachers` (teachers.stacked): teachers of one stackable architecture as one torch computation;
  * `KernelExecutor` (teachers.kernel): the same group as one compiled CPU call — the optional fast path, on CPU when
    numba is available (`cpu_kernel=True`); it can also route rows by task id itself (`routed`).
A stacked executor is used only when it reproduces each member's own forward (the kernel first, then torch); a group
whose check fails runs its teachers one by one, and so does a teacher whose obs keys are mapped onto student env keys
of other names (`teachers.inputs`: stacks read the env's keys by name).

Teacher recurrent states share one block of width max(rnn sizes): an env is on one task (hence one teacher) for a
whole episode, and the block is zeroed at episode ends.

Outputs. An executor's logits are SF's `action_logits` of the teacher for any action space (categorical logits,
a Gaussian's means and log-stds, a Tuple's parts concatenated). With `values=True` (value distillation) every
executor also gives the critic's raw output as one more, last, column (`FrozenTeacher(values=True)`; the stacked
executors as one more column of their head, so they are checked against it at load like the logits), and the bank
turns it into a return estimate with each row's own teacher's returns normaliser
(`FrozenTeacher.values_in_return_units`).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from sample_factory.utils.utils import log

from sf_kickstart.suites.registry import TASK_ID_KEY, task_indices
from sf_kickstart.teachers import kernel
from sf_kickstart.teachers.frozen import FrozenTeacher, TeacherFiles, example_inputs
from sf_kickstart.teachers.spec import TeacherRouting, TeacherSpec
from sf_kickstart.teachers.stacked import StackedTeachers, stack_signature


class SingleTeacher:
    """One teacher as an executor."""

    def __init__(self, teacher: FrozenTeacher, index: int):
        self.teacher = teacher
        self.members = [index]

    def forward(self, obs: Dict[str, Tensor], rnn_states: Tensor, member: np.ndarray):
        return self.teacher.forward(obs, rnn_states[:, : self.teacher.rnn_size])


def reproduces_members(executor, teachers: Sequence[FrozenTeacher], obs_space, device) -> bool:
    """The executor's output equals every member teacher's own forward on random inputs and routing."""
    members = executor.members
    try:
        gen = torch.Generator().manual_seed(1)
        n = 4 * len(members) + 1
        keys = teachers[members[0]].obs_keys
        inputs = example_inputs(obs_space, keys, teachers[members[0]].rnn_size, n, device, gen)
        obs, h = dict(zip(keys, inputs[:-1])), inputs[-1]
        member = torch.randint(0, len(members), (n,), generator=gen).numpy()
        if isinstance(executor, StackedTeachers):
            executor.trace(obs, h, member)
        logits, new_h = executor.forward(obs, h, member)
        for j, i in enumerate(members):
            sel = torch.from_numpy(member == j).to(device)
            if not sel.any():
                continue
            ref_l, ref_h = teachers[i].forward({k: v[sel] for k, v in obs.items()}, h[sel])
            close = lambda a, b: torch.allclose(a, b, atol=1e-5, rtol=1e-4)  # noqa: E731
            if not (close(logits[sel], ref_l) and close(new_h[sel], ref_h)):
                return False
        return True
    except Exception as exc:  # noqa: BLE001 - e.g. an architecture the kernel cannot compile: not a fast path
        log.warning(f"{type(executor).__name__} for teachers {members} failed its check: {exc!r}")
        return False


class TeacherBank:
    def __init__(
        self, teachers: Sequence[Union[TeacherSpec, TeacherFiles]], routing: Union[TeacherRouting, Sequence[str]],
        obs_space, action_space, device="cpu", fast: bool = True, cpu_kernel: bool = True, values: bool = False,
    ):
        """teachers: what `frozen.read_teacher` read, or specs to read now. routing: the run's task -> teacher routing
        (or the suite's task names to build it from). fast=False (validation in the main process): load and check
        every teacher, one executor each, untraced. cpu_kernel=False: no compiled kernel executor (torch only).
        values: `forward` also gives each row's teacher value estimate (value distillation)."""
        self.device = torch.device(device)
        self.values = values
        self.teachers = [FrozenTeacher(t, obs_space, action_space, device, fast=fast, values=values) for t in teachers]
        self.specs = [t.spec for t in self.teachers]
        self.routing = routing if isinstance(routing, TeacherRouting) else TeacherRouting.of(self.specs, routing)
        self.rnn_size = max((t.rnn_size for t in self.teachers), default=0)
        self.has_task_id = isinstance(obs_space, spaces.Dict) and TASK_ID_KEY in obs_space.spaces
        use_kernel = fast and cpu_kernel and self.device.type == "cpu" and kernel.available()
        self.groups = self._executors(obs_space, fast, use_kernel)
        self.member_of = np.full(max(len(self.teachers), 1), -1, dtype=np.int64)
        for ex in self.groups:
            self.member_of[ex.members] = np.arange(len(ex.members))
        # fast paths: one executor serves every task; the kernel executor then routes the rows itself
        whole = len(self.groups) == 1 and self.routing.every_task_has_a_teacher
        self.whole = self.groups[0] if whole else None
        self.routing_kernel: Optional[kernel.KernelExecutor] = None
        if isinstance(self.whole, kernel.KernelExecutor):
            self.routing_kernel = self.whole
            table = self.routing.table
            self.whole.set_route(TASK_ID_KEY if self.has_task_id else None, self.member_of[table], table)

    def _executors(self, obs_space, fast: bool, use_kernel: bool) -> List:
        """Teachers of one stackable architecture run together (a group of one too: it gets the stack's sparse input
        layer), the others one by one."""
        groups: List = []
        by_sig: Dict = {}
        for i, t in enumerate(self.teachers):
            sig = stack_signature(t) if fast and not t.mapped else None  # stacks read the env's keys by name
            if sig is None:
                groups.append(SingleTeacher(t, i))
            else:
                by_sig.setdefault(sig, []).append(i)
        for members in by_sig.values():
            stacked = StackedTeachers([self.teachers[i] for i in members], obs_space, members)
            candidates = ([kernel.KernelExecutor(stacked)] if use_kernel else []) + [stacked]
            chosen = next((ex for ex in candidates if reproduces_members(ex, self.teachers, obs_space, self.device)), None)
            if chosen is None:
                groups.extend(SingleTeacher(self.teachers[i], i) for i in members)
                continue
            if chosen is not candidates[0]:
                log.warning(f"CPU teacher kernel unusable for {[self.specs[i].name for i in members]}: torch path")
            groups.append(chosen)
        return groups

    def __len__(self):
        return len(self.teachers)

    def teacher_of_rows(self, obs: Dict[str, Tensor], n: int) -> np.ndarray:
        """Index of the teacher of each row's task (-1: none), on the host (routing plans are built there)."""
        if not self.has_task_id:
            return self.routing.teacher_of_rows(None, n)
        return self.routing.teacher_of_rows(task_indices(obs[TASK_ID_KEY]).cpu().numpy(), n)

    @torch.no_grad()
    def forward(self, obs: Dict[str, Tensor], rnn_states: Tensor, num_logits: int):
        """obs: raw (unnormalised) observations; rnn_states: [N, self.rnn_size].
        Returns teacher outputs [N, num_logits (+ 1 with `values`: the teacher's value estimate in return units, the
        last column)] (0 where no teacher), teacher index [N] (-1 = none), new states."""
        outputs, tidx, new_rnn = self.executor_outputs(obs, rnn_states, num_logits + int(self.values))
        if self.values:
            outputs[:, -1] = self.values_in_return_units(outputs[:, -1], tidx)
        return outputs, tidx, new_rnn

    def values_in_return_units(self, raw: Tensor, tidx: Tensor) -> Tensor:
        """Each row's critic output through its own teacher's return denormalisation (`FrozenTeacher`)."""
        values = raw.clone()
        for i, teacher in enumerate(self.teachers):
            if teacher.model.returns_normalizer is not None:
                rows = tidx == i
                values[rows] = teacher.values_in_return_units(raw[rows]).to(values.device)
        return values

    def executor_outputs(self, obs: Dict[str, Tensor], rnn_states: Tensor, width: int):
        """The executors' outputs [N, width] (the critic's raw output last with `values`), teacher index, states."""
        if self.routing_kernel is not None and rnn_states.device.type == "cpu":
            return self.routing_kernel.routed(obs, rnn_states)
        n = rnn_states.shape[0]
        obs = {k: torch.as_tensor(v).to(self.device) for k, v in obs.items()}
        rnn_states = rnn_states.to(self.device)
        tidx = self.teacher_of_rows(obs, n)
        tidx_out = torch.from_numpy(tidx.astype(np.float32)).to(self.device)
        if self.whole is not None:
            logits, new_h = self.whole.forward(obs, rnn_states, self.member_of[tidx])
            return logits.float(), tidx_out, new_h
        logits = torch.zeros(n, width, device=self.device)
        new_rnn = torch.zeros_like(rnn_states)
        for ex in self.groups:
            rows_np = np.flatnonzero(np.isin(tidx, ex.members))
            if rows_np.size == 0:
                continue
            rows = torch.from_numpy(rows_np).to(self.device)
            sub_logits, sub_h = ex.forward({k: v[rows] for k, v in obs.items()}, rnn_states[rows], self.member_of[tidx[rows_np]])
            logits[rows] = sub_logits.float()
            new_rnn[rows, : sub_h.shape[1]] = sub_h
        return logits, tidx_out, new_rnn
