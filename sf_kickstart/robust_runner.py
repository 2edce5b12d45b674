"""Sample Factory 2.1.1's parallel runner with its defects fixed, for every run through sf_kickstart.train (teacher
or not). `runner.KickstartRunner` adds the kickstart wiring on top of this base, by subclassing only.

Fixed here:
  * liveness: SF's event loops log and swallow exceptions raised in slots, so a worker whose env (or teacher) cannot
    be created would idle forever while its heartbeat timer keeps ticking. Our workers turn such failures into a
    process exit (`guarded`), and the runner stops the experiment with a failure status as soon as any of its
    processes dies (`_check_processes`), forcing the rest down if they stall;
  * orphans: worker processes exit when the main process is gone (`ExitWithParentOnUnpickle`);
  * `--train_for_seconds` never ended a run (SF never updates `total_train_seconds`);
  * after a failure SF does not join its processes, which keeps the interpreter alive forever (`run`).
The learner's own defects (V-trace summaries, silently unloadable checkpoints) are fixed in `learner.FixedLearner`.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import traceback
from typing import Callable, Optional

from signal_slot.signal_slot import Timer

from sample_factory.algo.learning.learner_worker import LearnerWorker
from sample_factory.algo.runners.runner_parallel import ParallelRunner
from sample_factory.algo.sampling.inference_worker import InferenceWorker
from sample_factory.algo.sampling.rollout_worker import RolloutWorker
from sample_factory.algo.sampling.sampler import ParallelSampler
from sample_factory.algo.utils.misc import ExperimentStatus
from sample_factory.utils.utils import log


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


class ExitWithParentOnUnpickle:
    """Worker objects are pickled into their spawned process; unpickling is the first thing that happens there, long
    before the runner's signals call `init()` (which never comes if the main process dies first)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.main_pid = os.getpid()  # constructed in the main process

    def __setstate__(self, state):
        self.__dict__.update(state)
        _exit_with_parent(self.cfg.serial_mode, self.main_pid)


def guarded(what: str) -> Callable:
    """A worker method whose exception ends the worker process (the runner then stops the run), instead of being
    logged and swallowed by SF's event loop. In serial mode the exception is raised."""

    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                log.error(f"{self.object_id}{what} failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
                if self.cfg.serial_mode:
                    raise
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(1)  # the runner notices the dead process and stops the experiment with a failure status

        return run

    return wrap


class RobustRolloutWorker(ExitWithParentOnUnpickle, RolloutWorker):
    """A rollout worker whose env cannot be created (or crashes) exits instead of idling forever."""

    @guarded(" (creating envs)")
    def init(self):
        super().init()

    @guarded(" (stepping envs)")
    def advance_rollouts(self, split_idx, policy_id):
        super().advance_rollouts(split_idx, policy_id)


class RobustInferenceWorker(ExitWithParentOnUnpickle, InferenceWorker):
    @guarded("")
    def init(self, init_model_data):
        super().init(init_model_data)


class RobustLearnerWorker(ExitWithParentOnUnpickle, LearnerWorker):
    """SF's learner worker with `make_learner(cfg, env_info, policy_versions, policy_id, param_server)` as its learner
    (built in the main process, like SF's)."""

    def __init__(self, evt_loop, cfg, env_info, buffer_mgr, batcher, policy_id, make_learner: Callable):
        super().__init__(evt_loop, cfg, env_info, buffer_mgr, batcher, policy_id)
        self.learner = make_learner(cfg, env_info, buffer_mgr.policy_versions, policy_id, self.param_server)

    @guarded(" (init)")
    def init(self):
        super().init()

    @guarded(" (training)")
    def on_new_training_batch(self, batch_idx: int):
        super().on_new_training_batch(batch_idx)

    def on_student_scores(self, scores):
        """Slot of `adaptive.AdaptiveLambda`: the student's running score per teacher, for a learner that uses it."""
        setter = getattr(self.learner, "set_student_scores", None)
        if setter is not None:
            setter(scores)


class RobustSampler(ParallelSampler):
    """SF's parallel sampler whose workers exit on failure and with the main process."""

    def _make_inference_worker(self, event_loop, policy_id, worker_idx, param_server):
        return RobustInferenceWorker(
            event_loop, policy_id, worker_idx, self.buffer_mgr, param_server, self.inference_queues[policy_id], self.cfg,
            self.env_info,
        )

    def _make_rollout_worker(self, event_loop, worker_idx):
        return RobustRolloutWorker(event_loop, worker_idx, self.buffer_mgr, self.inference_queues, self.cfg, self.env_info)


class RobustRunner(ParallelRunner):
    """ParallelRunner with robust workers, a process liveness monitor, a working --train_for_seconds and a clean
    shutdown. Subclasses choose the learner (`make_learner`) and the sampler class (`sampler_factory`)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.liveness_timer: Optional[Timer] = None
        self._train_started_at: Optional[float] = None

    def make_learner(self, cfg, env_info, policy_versions, policy_id, param_server):
        from sf_kickstart.learner import FixedLearner

        return FixedLearner(cfg, env_info, policy_versions, policy_id, param_server)

    def sampler_factory(self) -> Callable:
        return RobustSampler

    def _make_learner(self, event_loop, policy_id, batcher):
        return RobustLearnerWorker(
            event_loop, self.cfg, self.env_info, self.buffer_mgr, batcher, policy_id, make_learner=self.make_learner
        )

    def _make_sampler(self, sampler_cls, event_loop):
        return super()._make_sampler(self.sampler_factory(), event_loop)

    def _should_end_training(self):
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
        return status

    def run(self):
        status = super().run()
        # SF joins its processes only on the clean path: give them a moment, then terminate whatever is left
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
        for p in self._all_processes():
            proc = p._process
            if proc.pid is not None and not proc.is_alive():
                log.error(f"Process {p.name} died (exit code {proc.exitcode}): stopping the experiment")
                self._stop_training(failed=True)
                # live components stop through SF's normal path; if that stalls, force it after a grace period
                self._force_stop_timer = Timer(self.event_loop, 30.0, single_shot=True)
                self._force_stop_timer.timeout.connect(self._force_stop)
                return

    def _force_stop(self):
        log.error("Components did not stop after a process died: terminating the remaining processes")
        for p in self._all_processes():
            if p._process.pid is not None and p._process.is_alive():
                p._process.terminate()
        self.status = ExperimentStatus.FAILURE
        self.event_loop.stop()
