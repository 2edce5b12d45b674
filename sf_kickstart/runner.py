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

Robustness: SF's event loops log and swallow exceptions raised in slots, so a worker whose env or teacher cannot be
created would idle forever while its heartbeat timer keeps ticking. Our workers turn such failures into a process
exit, and the runner stops the experiment with a failure status as soon as any of its processes dies (also while it
is stopping). A checkpoint that cannot be written is such a failure, with the partial file removed and the last
intact checkpoint named. SIGINT and SIGTERM stop the run gracefully, with a final checkpoint.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import List, Optional

import torch
from signal_slot.signal_slot import Timer

from sample_factory.algo.learning.batcher import Batcher
from sample_factory.algo.learning.learner_worker import LearnerWorker
from sample_factory.algo.runners.runner import AlgoObserver
from sample_factory.algo.runners.runner_parallel import ParallelRunner
from sample_factory.algo.sampling.inference_worker import InferenceWorker
from sample_factory.algo.sampling.rollout_worker import RolloutWorker
from sample_factory.algo.sampling.sampler import ParallelSampler
from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs
from sample_factory.algo.utils.shared_buffers import (
    alloc_policy_output_tensors,
    alloc_trajectory_tensors,
    init_tensor,
    policy_device,
)
from sample_factory.algo.utils.tensor_utils import ensure_torch_tensor
from sample_factory.algo.utils.torch_utils import inference_context
from sample_factory.algo.utils.misc import ExperimentStatus, advance_rollouts_signal
from sample_factory.utils.utils import log

from sf_kickstart.teachers import TeacherBank, TeacherSpec

TEACHER_KEYS = ("teacher_logits", "teacher_idx")


@dataclass
class KickstartLayout:
    """What the buffers carry for kickstarting; None of this exists in a plain run."""

    student_rnn: int
    teacher_rnn: int
    num_logits: int
    specs: List[TeacherSpec] = field(default_factory=list)
    task_names: List[str] = field(default_factory=list)

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


def _exit_with_parent(serial: bool, main_pid: Optional[int]) -> None:
    """Worker processes exit when the main process is gone (killed, crashed): SF's would run on forever, orphaned.
    A polling thread, not PR_SET_PDEATHSIG: SF starts workers from a thread pool whose threads exit right away.
    `main_pid` is recorded when the worker object is built in the main process, so a worker orphaned while it was
    still starting up exits as well."""
    if serial:
        return
    import threading

    parent = main_pid if main_pid is not None else os.getppid()
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="exit_with_parent", daemon=True).start()


class _ExitWithParentOnUnpickle:
    """Worker objects are pickled into their spawned process; unpickling is the first thing that happens there, long
    before the runner's signals call `init()` (which never comes if the main process dies first)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.main_pid = os.getpid()  # constructed in the main process

    def __setstate__(self, state):
        self.__dict__.update(state)
        _exit_with_parent(self.cfg.serial_mode, self.main_pid)


def _fail_process(component: str, exc: BaseException, serial: bool) -> None:
    log.error(f"{component} failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    if serial:
        raise exc
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)  # the runner notices the dead process and stops the experiment with a failure status


def remove_partial_checkpoints(ckpt_dir: str) -> List[str]:
    """Remove SF's `<prefix>_temp` files: a checkpoint whose writing never completed (the process was killed or the
    disk was full). They match SF's `checkpoint_*` pattern and sort after every real checkpoint, so a resume would try
    to load one as the latest, and checkpoint rotation would count it as a checkpoint."""
    import glob

    removed = []
    for path in glob.glob(os.path.join(ckpt_dir, "*_temp")):
        try:
            os.remove(path)
            removed.append(path)
            log.warning(f"Removed {path}: a checkpoint whose writing did not complete")
        except OSError as exc:
            log.error(f"Could not remove the partial checkpoint {path}: {exc}")
    return removed


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


class KickstartInferenceWorker(_ExitWithParentOnUnpickle, InferenceWorker):
    """SF's inference worker plus the frozen teacher bank, run on the same raw observations as the student."""

    def __init__(self, *args, env_info, layout: Optional[KickstartLayout], **kwargs):
        super().__init__(*args, env_info=env_info, **kwargs)
        self.ks_env_info = env_info
        self.layout = layout
        self.bank: Optional[TeacherBank] = None

    def init(self, init_model_data):
        try:
            super().init(init_model_data)
            if self.layout is not None and self.bank is None and self.is_initialized:
                self.bank = TeacherBank(
                    self.layout.specs,
                    self.layout.task_names,
                    self.ks_env_info.obs_space,
                    self.ks_env_info.action_space,
                    self.device,
                )
                log.info(f"{self.object_id}: loaded {len(self.bank)} frozen teacher(s) on {self.device}")
        except Exception as exc:  # noqa: BLE001
            _fail_process(self.object_id, exc, self.cfg.serial_mode)

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


class RobustRolloutWorker(_ExitWithParentOnUnpickle, RolloutWorker):
    """A rollout worker whose env cannot be created (or crashes) exits instead of idling forever."""

    def init(self):
        try:
            super().init()
        except Exception as exc:  # noqa: BLE001
            _fail_process(f"{self.object_id} (creating envs)", exc, self.cfg.serial_mode)

    def advance_rollouts(self, split_idx, policy_id):
        try:
            super().advance_rollouts(split_idx, policy_id)
        except Exception as exc:  # noqa: BLE001
            _fail_process(f"{self.object_id} (stepping envs)", exc, self.cfg.serial_mode)


class KickstartSampler(ParallelSampler):
    layout: Optional[KickstartLayout] = None  # set on the class by the runner before construction

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

    def _make_rollout_worker(self, event_loop, worker_idx):
        return RobustRolloutWorker(event_loop, worker_idx, self.buffer_mgr, self.inference_queues, self.cfg, self.env_info)


class KickstartLearnerWorker(_ExitWithParentOnUnpickle, LearnerWorker):
    def __init__(self, evt_loop, cfg, env_info, buffer_mgr, batcher, policy_id, layout: Optional[KickstartLayout]):
        super().__init__(evt_loop, cfg, env_info, buffer_mgr, batcher, policy_id)
        from sf_kickstart.learner import KickstartLearner

        self.learner = KickstartLearner(
            cfg, env_info, buffer_mgr.policy_versions, policy_id, self.param_server, layout=layout
        )

    def init(self):
        try:
            self._check_checkpoint_writes()
            super().init()
        except Exception as exc:  # noqa: BLE001
            _fail_process(f"{self.object_id} (init)", exc, self.cfg.serial_mode)

    def _check_checkpoint_writes(self) -> None:
        """A checkpoint that cannot be written (disk full, permissions) stops the run with a clear error, whether it
        is a periodic, best, milestone or the final one (SF's on_stop). All of them go through Learner._save_impl,
        which writes <prefix>_temp and renames it when complete, so earlier checkpoints stay intact; the partial file
        is removed. Before, the exception ended the learner's event loop and the run hung."""
        learner = self.learner
        unchecked = learner._save_impl

        def checked_save_impl(name_prefix, *args, **kwargs):
            try:
                return unchecked(name_prefix, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                ckpt_dir = learner.checkpoint_dir(learner.cfg, learner.policy_id)
                remove_partial_checkpoints(ckpt_dir)
                intact = learner.get_checkpoints(ckpt_dir, f"{name_prefix}_*")
                last = os.path.basename(intact[-1]) if intact else "none"
                where = f"writing a checkpoint to {ckpt_dir}; the last one written, {last}, is intact"
                _fail_process(f"{self.object_id} ({where})", exc, self.cfg.serial_mode)

        learner._save_impl = checked_save_impl

    def on_new_training_batch(self, batch_idx: int):
        try:
            super().on_new_training_batch(batch_idx)
        except Exception as exc:  # noqa: BLE001
            _fail_process(f"{self.object_id} (training)", exc, self.cfg.serial_mode)

    def start_batcher_thread(self):
        """SF's batcher thread is not a daemon: when any slot of the learner's event loop raised, the loop ended but
        the thread kept the process alive, so the run hung with a learner that no longer learned. As a daemon, the
        process exits with the loop and the runner's liveness monitor stops the run."""
        from threading import Thread

        self.batcher.event_loop.process = self.event_loop.process
        self.batcher_thread = Thread(target=self.batcher.event_loop.exec, daemon=True)
        self.batcher_thread.start()


class DeathWatch:
    """The liveness check on the runner's event loop cannot help when that loop itself is blocked, and a killed process
    can block it: Sample Factory's processes talk through faster_fifo queues, whose process-shared mutexes are not
    robust, so a process killed (SIGKILL, the OOM killer) while it held one blocks every other user of that queue
    forever, the main process included. This thread does not depend on the loop: when a process has died before the
    run decided to stop (or the loop's own check saw it die) and the run has not ended `grace_s` later, it names the
    dead process, kills the remaining ones and exits the main process with status 1."""

    def __init__(self, runner: "KickstartRunner", grace_s: float = 45.0):
        self.runner = runner
        self.grace_s = grace_s
        self.finished = False  # set when the runner's run() has returned: nothing left to watch

    def start(self) -> None:
        import threading

        threading.Thread(target=self._watch, name="death_watch", daemon=True).start()

    def _watch(self) -> None:
        first_seen: Optional[float] = None
        while not self.finished:
            time.sleep(1.0)
            dead = [p.name for p in self.runner._all_processes() if _has_exited(p._process.pid)]
            unexpected = dead and (not self.runner.stopped or self.runner.died)
            if unexpected and first_seen is None:
                first_seen = time.time()
            if first_seen is not None and time.time() - first_seen > self.grace_s and not self.finished:
                self._give_up(dead)

    def _give_up(self, dead: List[str]) -> None:
        message = (
            f"process {', '.join(dead)} died and the run did not stop within {self.grace_s:.0f} s (a process killed "
            f"while it held a lock of a Sample Factory queue blocks the processes that share it): killing the rest"
        )
        log.error(message)
        for p in self.runner._all_processes():
            if p._process.pid is not None and not _has_exited(p._process.pid):
                p._process.kill()
        print(f"sf_kickstart: error: {message}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def _has_exited(pid: Optional[int]) -> bool:
    """Without reaping it (the main thread's multiprocessing bookkeeping does that): gone or a zombie."""
    import psutil

    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class KickstartRunner(ParallelRunner):
    """ParallelRunner with our learner, teacher-aware inference, robust workers and a process liveness monitor.
    With layout=None it is plain APPO (plus the V-trace/checkpoint fixes of our learner)."""

    def __init__(self, cfg, layout: Optional[KickstartLayout] = None):
        super().__init__(cfg)
        self.layout = layout
        if layout is not None:
            self.register_observer(KickstartBuffers(layout))
        self.liveness_timer: Optional[Timer] = None
        self._stop_requested: Optional[str] = None  # name of the signal (SIGINT, SIGTERM) that asked the run to stop
        self.died: List[str] = []  # processes the liveness check saw die
        self.death_watch = DeathWatch(self)
        self._train_started_at: Optional[float] = None
        # not register_policy_msg_handler(): in SF 2.1.1 it stores a bare function where a list is iterated
        self.policy_msg_handlers.setdefault("kickstart_stats", []).append(_kickstart_stats_handler)

    def _make_batcher(self, event_loop, policy_id):
        if self.layout is None:
            return super()._make_batcher(event_loop, policy_id)
        return KickstartBatcher(event_loop, policy_id, self.buffer_mgr, self.cfg, self.env_info, layout=self.layout)

    def _make_learner(self, event_loop, policy_id, batcher):
        return KickstartLearnerWorker(
            event_loop, self.cfg, self.env_info, self.buffer_mgr, batcher, policy_id, layout=self.layout
        )

    def _make_sampler(self, sampler_cls, event_loop):
        sampler_cls = type("BoundKickstartSampler", (KickstartSampler,), {"layout": self.layout})
        return super()._make_sampler(sampler_cls, event_loop)

    def _should_end_training(self):
        # SF 2.1.1 never updates total_train_seconds, so --train_for_seconds never ended a run
        if self._train_started_at is not None:
            self.total_train_seconds = time.time() - self._train_started_at
        return super()._should_end_training()

    def _on_start(self):
        self._train_started_at = time.time()
        super()._on_start()

    def init(self):
        status = super().init()
        if status == ExperimentStatus.SUCCESS:
            self.liveness_timer = Timer(self.event_loop, 1.0)
            self.liveness_timer.timeout.connect(self._check_processes)
            self.timers.append(self.liveness_timer)
            self._install_stop_signals()
            self.death_watch.start()
        return status

    def _install_stop_signals(self) -> None:
        """SIGINT (Ctrl-C) and SIGTERM (kill, a scheduler's pre-emption) stop the run the way reaching its budget
        does: every component stops and the learner writes a final checkpoint. SF left its event loop at once on
        Ctrl-C and the workers were terminated a second later, racing the learner's final save; SIGTERM killed the
        main process outright. A second signal interrupts at once. A signal ignored by whoever started the run (a
        shell's background job, nohup) stays ignored."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) != signal.SIG_IGN:
                signal.signal(sig, self._on_stop_signal)

    def _on_stop_signal(self, signum, frame) -> None:
        import signal

        if self._stop_requested is not None:
            raise KeyboardInterrupt  # SF's event loop ends at once, as before
        self._stop_requested = signal.Signals(signum).name  # acted upon by the liveness timer, inside the event loop

    def run(self):
        try:
            return self._run()
        finally:
            self.death_watch.finished = True

    def _run(self):
        status = super().run()
        # SF joins its processes only on the clean path; after a failure in the main loop they would keep the
        # interpreter alive forever. Give them a moment, then terminate whatever is left.
        grace = 10.0 if status == ExperimentStatus.SUCCESS else 1.0
        for p in self._all_processes():
            proc = p._process
            if proc.pid is None:
                continue
            proc.join(grace)
            if proc.is_alive():
                log.warning(f"Terminating leftover process {p.name}")
                proc.terminate()
                proc.join(5.0)
                if proc.is_alive():
                    proc.kill()
        return status

    def _all_processes(self):
        return list(self.processes) + list(getattr(self.sampler, "processes", []))

    def _check_processes(self):
        if self.stopped:
            return
        if self._stop_requested is not None:
            log.warning(f"{self._stop_requested}: writing a final checkpoint and stopping (send it again to stop at once)")
            self._stop_training()
            self.status = ExperimentStatus.INTERRUPTED
            return
        for p in self._all_processes():
            proc = p._process
            if proc.pid is not None and not proc.is_alive():
                log.error(f"Process {p.name} died (exit code {proc.exitcode}): stopping the experiment")
                self.died.append(p.name)
                self._stop_training(failed=True)
                # live components stop through SF's normal path; if that stalls, force it after a grace period
                self._force_stop_timer = Timer(self.event_loop, 30.0, single_shot=True)
                self._force_stop_timer.timeout.connect(self._force_stop)
                return

    def _stop_training(self, failed: bool = False) -> None:
        was_stopped = self.stopped
        super()._stop_training(failed)
        if not was_stopped and self.stopped and self.event_loop is not None:
            # SF waits for every component to report that it stopped; one whose process dies while stopping (e.g.
            # its final checkpoint cannot be written) never reports, and SF's timers are stopped by now
            self._stopping_timer = Timer(self.event_loop, 1.0)
            self._stopping_timer.timeout.connect(self._check_stopping_processes)

    def _check_stopping_processes(self) -> None:
        dead = [c for c in self.components_to_stop if not self._process_alive(c)]
        if not dead:
            return
        log.error(f"{', '.join(c.object_id for c in dead)} died while stopping: not waiting for them")
        self.status = ExperimentStatus.FAILURE
        self.components_to_stop = [c for c in self.components_to_stop if c not in dead]
        if not self.components_to_stop:
            self._stopping_timer.stop()
            self.all_components_stopped.emit()

    def _process_alive(self, component) -> bool:
        process = getattr(component.event_loop, "process", None)
        if process is None and component in self.batchers.values():  # a thread of its learner's process
            process = self.learners[component.policy_id].event_loop.process
        return process is None or process.is_alive()

    def _force_stop(self):
        log.error("Components did not stop after a process died: terminating the remaining processes")
        for p in self._all_processes():
            if p._process.pid is not None and p._process.is_alive():
                p._process.terminate()
        self.status = ExperimentStatus.FAILURE
        self.event_loop.stop()


def _kickstart_stats_handler(runner, msg, policy_id):
    env_steps = runner.env_steps.get(policy_id, 0)
    for key, value in msg["kickstart_stats"].items():
        runner.writers[policy_id].add_scalar(f"kickstart/{key}", value, env_steps)
