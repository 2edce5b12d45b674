"""Fixes of Sample Factory 2.1.1's worker processes (rollout, inference, learner), by subclassing only.

  * exit with the parent (`ExitWithParentOnUnpickle`): SF's worker processes run on forever, orphaned, when the main
    process is killed or crashes; ours exit.
  * failed worker methods end their process (`guarded`, `fail_process`): SF's event loops log and swallow an
    exception raised in a slot, so a worker whose env (or teacher) cannot be created idles forever while its
    heartbeat keeps ticking. Ours exit, and the runner's liveness check (`fixes.runner`) stops the run.
  * a checkpoint that cannot be written (disk full) ended the learner's event loop and the run hung: now a clear
    error naming the intact last checkpoint, with the partial file removed (`RobustLearnerWorker`).
  * the learner's batcher thread was not a daemon, so a learner whose event loop died hung instead of exiting.
  * `LearnerWorker` hard-codes `Learner(...)`: `RobustLearnerWorker` takes the learner's factory.

May import: Sample Factory, the ground floor. Nothing kickstart-specific.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
import traceback
from typing import Callable, Optional

from sample_factory.algo.learning.learner_worker import LearnerWorker
from sample_factory.algo.sampling.inference_worker import InferenceWorker
from sample_factory.algo.sampling.rollout_worker import RolloutWorker
from sample_factory.algo.sampling.sampler import ParallelSampler
from sample_factory.utils.utils import log

from sf_kickstart.experiments import remove_partial_checkpoints


def exit_with_parent(serial: bool, main_pid: Optional[int]) -> None:
    """Worker processes exit when the main process is gone (killed, crashed): SF's would run on forever, orphaned.
    A polling thread, not PR_SET_PDEATHSIG: SF starts workers from a thread pool whose threads exit right away.
    `main_pid` is recorded when the worker object is built in the main process, so a worker orphaned while it was
    still starting up exits as well."""
    if serial:
        return
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
        exit_with_parent(self.cfg.serial_mode, self.main_pid)


def guarded(what: str) -> Callable:
    """A worker method whose exception ends the worker process (the runner then stops the run), instead of being
    logged and swallowed by SF's event loop. In serial mode the exception is raised."""

    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                fail_process(self, what, exc)

        return run

    return wrap


def fail_process(worker, what: str, exc: BaseException) -> None:
    """Log `exc` and end the worker's process (the runner notices and stops the run); in serial mode, raise it."""
    log.error(f"{worker.object_id}{what} failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    if worker.cfg.serial_mode:
        raise exc
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)  # the runner notices the dead process and stops the experiment with a failure status


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
        self._check_checkpoint_writes()
        super().init()

    @guarded(" (training)")
    def on_new_training_batch(self, batch_idx: int):
        super().on_new_training_batch(batch_idx)

    def _check_checkpoint_writes(self) -> None:
        """A checkpoint that cannot be written (disk full, permissions) stops the run with a clear error, whether it
        is a periodic, best or the final one (SF's on_stop). All of them go through Learner._save_impl,
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
                where = f" (writing a checkpoint to {ckpt_dir}; the last one written, {last}, is intact)"
                fail_process(self, where, exc)

        learner._save_impl = checked_save_impl

    def start_batcher_thread(self):
        """SF's batcher thread is not a daemon: when any slot of the learner's event loop raised, the loop ended but
        the thread kept the process alive, so the run hung with a learner that no longer learned. As a daemon, the
        process exits with the loop and the runner's liveness monitor stops the run."""
        self.batcher.event_loop.process = self.event_loop.process
        self.batcher_thread = threading.Thread(target=self.batcher.event_loop.exec, daemon=True)
        self.batcher_thread.start()


class RobustSampler(ParallelSampler):
    """SF's parallel sampler whose workers exit on failure and with the main process. Subclasses choose the inference
    worker (`inference_worker_cls`, built with SF's arguments plus `inference_worker_kwargs()`)."""

    inference_worker_cls = RobustInferenceWorker

    def inference_worker_kwargs(self) -> dict:
        return {}

    def _make_inference_worker(self, event_loop, policy_id, worker_idx, param_server):
        return self.inference_worker_cls(
            event_loop, policy_id, worker_idx, self.buffer_mgr, param_server, self.inference_queues[policy_id], self.cfg,
            self.env_info, **self.inference_worker_kwargs(),
        )

    def _make_rollout_worker(self, event_loop, worker_idx):
        return RobustRolloutWorker(event_loop, worker_idx, self.buffer_mgr, self.inference_queues, self.cfg, self.env_info)
