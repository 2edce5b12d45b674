"""Wiring kickstarting into Sample Factory's parallel runner, by subclass and registration only.

Data path (DESIGN.md): the frozen teachers run in the inference worker, where the observations already are, once per
step; their logits travel to the learner in the shared-memory trajectory buffers.

Buffer layout. Two per-step keys are added to every trajectory buffer, policy-output slot and training batch:
`teacher_logits` [num_logits] and `teacher_idx` (index of the teacher that produced them, -1 for a task without a
teacher). The teachers' recurrent state rides in the *tail* of Sample Factory's own `rnn_states` slot
(width = student rnn size + max teacher rnn size). SF's samplers already carry `rnn_states` from step to step and
across trajectory boundaries and zero it at episode ends, in batched and non-batched sampling and with any number
of inference workers, so each env's teacher state is kept and reset exactly like the student's, without touching
SF's rollout code. The learner slices the tail off before the student sees it.

Sample Factory's own defects are fixed in the base class, `robust_runner.RobustRunner`; this module only adds the
kickstart wiring (buffers, batcher, teacher-aware inference worker, learner, stats handler) in its subclass.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import List, Optional

import torch

from sample_factory.algo.learning.batcher import Batcher
from sample_factory.algo.runners.runner import AlgoObserver
from sample_factory.algo.utils.misc import advance_rollouts_signal
from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs
from sample_factory.algo.utils.shared_buffers import (
    alloc_policy_output_tensors,
    alloc_trajectory_tensors,
    init_tensor,
    policy_device,
)
from sample_factory.algo.utils.tensor_utils import ensure_torch_tensor
from sample_factory.algo.utils.torch_utils import inference_context
from sample_factory.utils.utils import log

from sf_kickstart import tags
from sf_kickstart.sf.fixes.robust_runner import (
    RobustInferenceWorker,
    RobustLearnerWorker,
    RobustRunner,
    RobustSampler,
    guarded,
)
from sf_kickstart.teachers import TeacherBank, TeacherRouting, TeacherSpec

TEACHER_KEYS = ("teacher_logits", "teacher_idx")


@dataclass
class KickstartLayout:
    """What the buffers carry for kickstarting; None of this exists in a plain run."""

    student_rnn: int
    teacher_rnn: int
    num_logits: int
    specs: List[TeacherSpec] = field(default_factory=list)
    routing: Optional[TeacherRouting] = None  # task -> teacher, over the suite's task list
    teacher_scores: Optional[List[float]] = None  # G_T,i per teacher (adaptive λ only)

    @property
    def task_names(self) -> List[str]:
        return list(self.routing.task_names) if self.routing is not None else []

    @property
    def total_rnn(self) -> int:
        return self.student_rnn + self.teacher_rnn


def alloc_kickstart_trajectory_tensors(env_info, num_traj, rollout, layout: KickstartLayout, device, share):
    tensors = alloc_trajectory_tensors(env_info, num_traj, rollout, layout.total_rnn, device, share)
    tensors["teacher_logits"] = init_tensor([num_traj, rollout], torch.float32, [layout.num_logits], device, share)
    tensors["teacher_idx"] = init_tensor([num_traj, rollout], torch.float32, [], device, share)
    return tensors


def extend_buffers(buffer_mgr, cfg, env_info, layout: KickstartLayout) -> None:
    """Re-allocate SF's BufferMgr tensors with the kickstart keys (done once, in the main process, before any worker
    process is started; queues of free buffer indices are unchanged)."""
    share = not cfg.serial_mode
    for device, traj in list(buffer_mgr.traj_tensors_torch.items()):
        num_traj = traj["rewards"].shape[0]
        buffer_mgr.traj_tensors_torch[device] = alloc_kickstart_trajectory_tensors(
            env_info, num_traj, cfg.rollout, layout, device, share
        )
        outputs, names, sizes = alloc_policy_output_tensors(cfg, env_info, layout.total_rnn, device, share)
        names, sizes = list(names), list(sizes)
        if cfg.batched_sampling:
            lead = list(outputs["values"].shape)
            outputs["teacher_logits"] = init_tensor(lead, torch.float32, [layout.num_logits], device, share)
            outputs["teacher_idx"] = init_tensor(lead, torch.float32, [], device, share)
        else:
            lead = list(outputs.shape[:-1])
            outputs = init_tensor(lead, torch.float32, [sum(sizes) + layout.num_logits + 1], device, share)
        names += list(TEACHER_KEYS)
        sizes += [layout.num_logits, 1]
        buffer_mgr.policy_output_tensors_torch[device] = outputs
        buffer_mgr.output_names, buffer_mgr.output_sizes = tuple(names), tuple(sizes)


class KickstartBuffers(AlgoObserver):
    """Runs at the end of Runner.init(), right after SF builds its BufferMgr and before batchers/samplers exist."""

    def __init__(self, layout: KickstartLayout):
        self.layout = layout

    def on_init(self, runner) -> None:
        extend_buffers(runner.buffer_mgr, runner.cfg, runner.env_info, self.layout)


class KickstartBatcher(Batcher):
    def __init__(self, *args, layout: KickstartLayout, **kwargs):
        super().__init__(*args, **kwargs)
        self.layout = layout

    def init(self):
        device = policy_device(self.cfg, self.policy_id)
        for _ in range(self.max_batches_to_accumulate):
            self.training_batches.append(
                alloc_kickstart_trajectory_tensors(
                    self.env_info, self.traj_per_training_iteration, self.cfg.rollout, self.layout, device, False
                )
            )
        self.initialized.emit()


class KickstartInferenceWorker(RobustInferenceWorker):
    """SF's inference worker plus the frozen teacher bank, run on the same raw observations as the student."""

    def __init__(self, *args, env_info, layout: Optional[KickstartLayout], **kwargs):
        super().__init__(*args, env_info=env_info, **kwargs)
        self.ks_env_info = env_info
        self.layout = layout
        self.bank: Optional[TeacherBank] = None

    @guarded("")
    def init(self, init_model_data):
        super().init(init_model_data)
        if self.layout is not None and self.bank is None and self.is_initialized:
            info = self.ks_env_info
            self.bank = TeacherBank(
                self.layout.specs, self.layout.task_names, info.obs_space, info.action_space, self.device
            )
            log.info(f"{self.object_id}: loaded {len(self.bank)} frozen teacher(s) on {self.device}")

    def _handle_policy_steps(self, timing):
        if self.layout is None:
            return super()._handle_policy_steps(timing)
        layout = self.layout
        with inference_context(self.cfg.serial_mode):
            obs, rnn_states = self._batch_func(timing)
            num_samples = rnn_states.shape[0]
            self.total_num_samples += num_samples

            with timing.add_time("obs_to_device_normalize"):
                actor_critic = self.param_client.actor_critic
                if actor_critic.training:
                    actor_critic.eval()
                normalized_obs = prepare_and_normalize_obs(actor_critic, obs)  # obs now holds raw device tensors
                rnn_states = ensure_torch_tensor(rnn_states).to(self.device).float()

            with timing.add_time("forward"):
                policy_outputs = actor_critic(normalized_obs, rnn_states[:, : layout.student_rnn])
                policy_outputs["policy_version"] = torch.empty([num_samples]).fill_(self.param_client.policy_version)

            with timing.add_time("teacher_forward"):
                t_logits, t_idx, t_rnn = self.bank.forward(obs, rnn_states[:, layout.student_rnn :], layout.num_logits)
                policy_outputs["new_rnn_states"] = torch.cat([policy_outputs["new_rnn_states"], t_rnn], dim=1)
                policy_outputs["teacher_logits"] = t_logits
                policy_outputs["teacher_idx"] = t_idx

            with timing.add_time("prepare_outputs"):
                signals_to_send = self._prepare_policy_outputs_func(num_samples, policy_outputs, self.requests)

            with timing.add_time("send_messages"):
                for actor_idx, data in signals_to_send.items():
                    self.emit_many(advance_rollouts_signal(actor_idx), data)

            self.requests = []


class KickstartSampler(RobustSampler):
    def __init__(self, *args, layout: Optional[KickstartLayout] = None, **kwargs):
        self.layout = layout  # before SF's __init__, which makes the workers
        super().__init__(*args, **kwargs)

    def _make_inference_worker(self, event_loop, policy_id, worker_idx, param_server):
        return KickstartInferenceWorker(
            event_loop,
            policy_id,
            worker_idx,
            self.buffer_mgr,
            param_server,
            self.inference_queues[policy_id],
            self.cfg,
            env_info=self.env_info,
            layout=self.layout,
        )


class KickstartLearnerWorker(RobustLearnerWorker):
    """The learner worker of a kickstarted run: RobustLearnerWorker plus the slots kickstarting adds."""

    def on_student_scores(self, scores):
        """Slot of `adaptive.AdaptiveLambda`: the student's running score per teacher (KickstartLearner lowers f_i)."""
        self.learner.set_student_scores(scores)


class KickstartRunner(RobustRunner):
    """RobustRunner with our learner and teacher-aware inference. With layout=None it is plain APPO (plus the
    base class's and FixedLearner's fixes)."""

    learner_worker_cls = KickstartLearnerWorker

    def __init__(self, cfg, layout: Optional[KickstartLayout] = None):
        super().__init__(cfg)
        self.layout = layout
        if layout is not None:
            self.register_observer(KickstartBuffers(layout))
        # not register_policy_msg_handler(): in SF 2.1.1 it stores a bare function where a list is iterated
        self.policy_msg_handlers.setdefault(tags.KS_STATS_MSG, []).append(_kickstart_stats_handler)

    def make_learner(self, cfg, env_info, policy_versions, policy_id, param_server):
        from sf_kickstart.sf.learner import KickstartLearner

        return KickstartLearner(cfg, env_info, policy_versions, policy_id, param_server, layout=self.layout)

    def sampler_factory(self):
        return functools.partial(KickstartSampler, layout=self.layout)

    def _make_batcher(self, event_loop, policy_id):
        if self.layout is None:
            return super()._make_batcher(event_loop, policy_id)
        return KickstartBatcher(event_loop, policy_id, self.buffer_mgr, self.cfg, self.env_info, layout=self.layout)


def _kickstart_stats_handler(runner, msg, policy_id):
    env_steps = runner.env_steps.get(policy_id, 0)
    for key, value in msg[tags.KS_STATS_MSG].items():
        runner.writers[policy_id].add_scalar(tags.kickstart(key), value, env_steps)
