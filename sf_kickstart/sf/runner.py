"""Kickstarting wired into Sample Factory's parallel runner, by subclassing and registration only: `KickstartRunner`
with its sampler, teacher-aware inference worker and learner worker.

Data path (DESIGN.md): the frozen teachers run in the inference worker, where the observations already are, once per
step; their logits travel to the learner in the shared-memory buffers (`sf.storage`: the buffer layout, and the
teacher state in the tail of `rnn_states`).

The teachers' forward is added to SF's own `InferenceWorker._handle_policy_steps`, which runs unchanged (no SF code
is copied here). That method batches the requests (`self._batch_func`), moves the raw observations to the device in
place and normalises them (`prepare_and_normalize_obs`), then calls `self.param_client.actor_critic(normalized_obs,
rnn_states)` with the full-width `rnn_states`. In a kickstarted run the worker
  * wraps `_batch_func` to remember the batched observation dict (which then holds the raw device tensors), and
  * shows SF's method its parameter client through `TeacherAwareParams`, whose `actor_critic` is `StudentAndTeachers`:
    every attribute is the student's (eval(), normalize_obs, device_for_input_tensor, ...), and its call runs the
    student on `rnn_states[:, :student_rnn]` and the teacher bank on the remembered raw observations and
    `rnn_states[:, student_rnn:]`, and returns the student's outputs with the teachers' state appended to
    `new_rnn_states` and `teacher_logits` / `teacher_idx` (and `teacher_values`, value distillation) added.
The student's model (the learner's and the inference workers' copies) is built on its `--student_obs_keys` only
(`teachers.student_env_info`); the buffers, the batches and the teacher bank keep every observation key.
SF's own defects are fixed in the base classes (`sf.fixes`); this module only adds the kickstart wiring.

May import: Sample Factory, the ground floor, `sf.fixes`, `sf.storage`, `sf.learner`, `sf.observers`, `teachers`.
"""

from __future__ import annotations

import functools
from typing import Optional

import torch

from sample_factory.utils.utils import log

from sf_kickstart import tags
from sf_kickstart.sf.fixes.runner import RobustRunner
from sf_kickstart.sf.fixes.workers import RobustInferenceWorker, RobustLearnerWorker, RobustSampler, guarded
from sf_kickstart.sf.learner import KickstartLearner
from sf_kickstart.sf.observers import write_kickstart_stats
from sf_kickstart.sf.storage import KickstartBatcher, KickstartBuffers, KickstartLayout
from sf_kickstart.teachers import TeacherBank, student_env_info


class StudentAndTeachers:
    """The actor-critic SF's `_handle_policy_steps` calls in a kickstarted run: the student plus the teacher bank."""

    def __init__(self, student, bank: TeacherBank, layout: KickstartLayout, timing):
        self.student = student  # SF's inference copy of the model
        self.bank = bank
        self.layout = layout
        self.timing = timing
        self.raw_obs = None  # this step's batched observations (raw, on the device once SF has prepared them)

    def __getattr__(self, name):
        if name == "student":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.student, name)

    def __call__(self, normalized_obs, rnn_states):
        split = self.layout.student_rnn
        outputs = self.student(normalized_obs, rnn_states[:, :split])
        num_logits = self.layout.num_logits
        with self.timing.add_time("teacher_forward"):
            teacher_out, teacher_idx, teacher_rnn = self.bank.forward(self.raw_obs, rnn_states[:, split:], num_logits)
        self.raw_obs = None
        outputs["new_rnn_states"] = torch.cat([outputs["new_rnn_states"], teacher_rnn], dim=1)
        outputs["teacher_logits"] = teacher_out[:, :num_logits]
        outputs["teacher_idx"] = teacher_idx
        if self.layout.teacher_values:  # the bank's last column (`TeacherBank(values=True)`)
            outputs["teacher_values"] = teacher_out[:, num_logits]
        return outputs


class TeacherAwareParams:
    """SF's parameter client as the inference worker's own methods see it: `actor_critic` is the student's model
    wrapped in `StudentAndTeachers`; everything else (weight updates, policy_version, cleanup) is the client's."""

    def __init__(self, client, student_and_teachers: StudentAndTeachers):
        self.client = client
        self.student_and_teachers = student_and_teachers

    @property
    def actor_critic(self) -> StudentAndTeachers:
        self.student_and_teachers.student = self.client.actor_critic  # one model object, its weights updated in place
        return self.student_and_teachers

    def __getattr__(self, name):
        if name == "client":
            raise AttributeError(name)
        return getattr(self.client, name)


class KickstartInferenceWorker(RobustInferenceWorker):
    """SF's inference worker plus the frozen teacher bank, run on the same raw observations as the student."""

    def __init__(self, event_loop, policy_id, worker_idx, buffer_mgr, param_server, inference_queue, cfg, env_info,
                 layout: Optional[KickstartLayout] = None):
        # the student's model on its --student_obs_keys; the teachers on the env's every key
        student_info = student_env_info(cfg, env_info)
        super().__init__(event_loop, policy_id, worker_idx, buffer_mgr, param_server, inference_queue, cfg, student_info)
        self.spaces = (env_info.obs_space, env_info.action_space)
        self.layout = layout
        self.teachers: Optional[StudentAndTeachers] = None

    @guarded("")
    def init(self, init_model_data):
        super().init(init_model_data)
        if self.layout is not None and self.teachers is None and self.is_initialized:
            bank = TeacherBank(
                self.layout.specs, self.layout.routing, *self.spaces, self.device, values=self.layout.teacher_values
            )
            log.info(f"{self.object_id}: loaded {len(bank)} frozen teacher(s) on {self.device}")
            self.teachers = StudentAndTeachers(self.param_client.actor_critic, bank, self.layout, self.timing)
            self.param_client = TeacherAwareParams(self.param_client, self.teachers)
            self.batch_without_teachers, self._batch_func = self._batch_func, self.batch_for_teachers

    def batch_for_teachers(self, timing):
        """SF's `_batch_func`, remembering the observations for the teachers."""
        obs, rnn_states = self.batch_without_teachers(timing)
        self.teachers.raw_obs = obs
        return obs, rnn_states


class KickstartSampler(RobustSampler):
    inference_worker_cls = KickstartInferenceWorker

    def __init__(self, *args, layout: Optional[KickstartLayout] = None, **kwargs):
        self.layout = layout  # before SF's __init__, which makes the workers
        super().__init__(*args, **kwargs)

    def inference_worker_kwargs(self) -> dict:
        return dict(layout=self.layout)


class KickstartLearnerWorker(RobustLearnerWorker):
    """The learner worker of a kickstarted run: RobustLearnerWorker plus the slots kickstarting adds."""

    def on_student_scores(self, scores):
        """Slot of `sf.observers.AdaptiveLambda`: the student's running scores per teacher (adaptive λ's f_i) and per
        task (re-engaging λ's g_k)."""
        self.learner.weights.observe_student_scores(scores["teachers"])
        self.learner.weights.observe_task_scores(scores["tasks"])


class KickstartRunner(RobustRunner):
    """RobustRunner with our learner and teacher-aware inference. With layout=None it is plain APPO (plus the fixes
    of `sf.fixes`)."""

    learner_worker_cls = KickstartLearnerWorker

    def __init__(self, cfg, layout: Optional[KickstartLayout] = None):
        super().__init__(cfg)
        self.layout = layout
        if layout is not None:
            self.register_observer(KickstartBuffers(layout))
        self.register_policy_msg_handler(tags.KS_STATS_MSG, write_kickstart_stats)

    def make_learner(self, cfg, env_info, policy_versions, policy_id, param_server):
        student_info = student_env_info(cfg, env_info)  # its model on its --student_obs_keys (teachers.inputs)
        return KickstartLearner(cfg, student_info, policy_versions, policy_id, param_server, layout=self.layout)

    def sampler_factory(self):
        return functools.partial(KickstartSampler, layout=self.layout)

    def _make_batcher(self, event_loop, policy_id):
        if self.layout is None:
            return super()._make_batcher(event_loop, policy_id)
        return KickstartBatcher(event_loop, policy_id, self.buffer_mgr, self.cfg, self.env_info, layout=self.layout)
