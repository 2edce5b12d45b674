"""Sample Factory 2.1.1's parallel runner with its defects fixed, for every run through sf_kickstart.train (teacher
or not). `runner.KickstartRunner` adds the kickstart wiring on top of this base, by subclassing only.

Fixed here:
  * liveness: SF's event loops log and swallow exceptions raised in slots, so a worker whose env (or teacher) cannot
    be created would idle forever while its heartbeat timer keeps ticking. Our workers turn such failures into a
    process exit (`guarded`), and the runner stops the experiment with a failure status as soon as any of its
    processes dies (`_check_processes`), forcing the rest down if they stall;
  * orphans: worker processes exit when the main process is gone (`ExitWithParentOnUnpickle`);
  * `--train_for_seconds` never ended a run (SF never updates `total_train_seconds`);
  * after a failure SF does not join its processes, which keeps the interpreter alive forever (`run`);
  * a process that dies while the run is stopping was waited for forever (`_check_stopping_processes`);
  * a process killed while it held a lock of a faster_fifo queue blocks the main process's event loop, so the
    liveness check above never runs: `DeathWatch`, a thread, bounds the run's life after a process died;
  * a checkpoint that cannot be written (disk full) ended the learner's event loop and the run hung: now a clear
    error naming the intact last checkpoint, with the partial file removed (`RobustLearnerWorker`);
  * the learner's batcher thread was not a daemon, so a learner whose event loop died hung instead of exiting;
  * SIGINT left the event loop at once, racing the final checkpoint; SIGTERM killed the main process outright: both
    now stop the run gracefully with a final checkpoint (`_install_stop_signals`).
The learner's own defects (V-trace summaries, silently unloadable checkpoints) are fixed in `learner.FixedLearner`.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import traceback
from typing import Callable, List, Optional

from signal_slot.signal_slot import Timer

from sample_factory.algo.learning.learner_worker import LearnerWorker
from sample_factory.algo.runners.runner_parallel import ParallelRunner
from sample_factory.algo.sampling.inference_worker import InferenceWorker
from sample_factory.algo.sampling.rollout_worker import RolloutWorker
from sample_factory.algo.sampling.sampler import ParallelSampler
from sample_factory.algo.utils.misc import ExperimentStatus
from sample_factory.utils.utils import log

from sf_kickstart.experiments import remove_partial_checkpoints


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
        from threading import Thread

        self.batcher.event_loop.process = self.event_loop.process
        self.batcher_thread = Thread(target=self.batcher.event_loop.exec, daemon=True)
        self.batcher_thread.start()


class RobustSampler(ParallelSampler):
    """SF's parallel sampler whose workers exit on failure and with the main process."""

    def _make_inference_worker(self, event_loop, policy_id, worker_idx, param_server):
        return RobustInferenceWorker(
            event_loop, policy_id, worker_idx, self.buffer_mgr, param_server, self.inference_queues[policy_id], self.cfg,
            self.env_info,
        )

    def _make_rollout_worker(self, event_loop, worker_idx):
        return RobustRolloutWorker(event_loop, worker_idx, self.buffer_mgr, self.inference_queues, self.cfg, self.env_info)


class DeathWatch:
    """The liveness check on the runner's event loop cannot help when that loop itself is blocked, and a killed process
    can block it: Sample Factory's processes talk through faster_fifo queues, whose process-shared mutexes are not
    robust, so a process killed (SIGKILL, the OOM killer) while it held one blocks every other user of that queue
    forever, the main process included. This thread does not depend on the loop: when a process has died before the
    run decided to stop (or the loop's own check saw it die) and the run has not ended `grace_s` later, it names the
    dead process, kills the remaining ones and exits the main process with status 1."""

    def __init__(self, runner: "RobustRunner", grace_s: float = 45.0):
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


class RobustRunner(ParallelRunner):
    """ParallelRunner with robust workers, a process liveness monitor, a working --train_for_seconds and a clean
    shutdown. Subclasses choose the learner (`make_learner`), its worker class (`learner_worker_cls`) and the sampler
    class (`sampler_factory`)."""

    learner_worker_cls = RobustLearnerWorker

    def __init__(self, cfg):
        super().__init__(cfg)
        self.liveness_timer: Optional[Timer] = None
        self._train_started_at: Optional[float] = None
        self._stop_requested: Optional[str] = None  # name of the signal (SIGINT, SIGTERM) that asked the run to stop
        self.died: List[str] = []  # processes the liveness check saw die
        self.death_watch = DeathWatch(self)

    def make_learner(self, cfg, env_info, policy_versions, policy_id, param_server):
        from sf_kickstart.sf.learner import FixedLearner

        return FixedLearner(cfg, env_info, policy_versions, policy_id, param_server)

    def sampler_factory(self) -> Callable:
        return RobustSampler

    def _make_learner(self, event_loop, policy_id, batcher):
        return self.learner_worker_cls(
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

    def exit_code(self, status) -> int:
        """The process exit status for `status`: 128 + the signal's number after a SIGINT/SIGTERM stop (130, 143: the
        shell's convention, distinct from SF's INTERRUPTED = 2, which is also our bad-input code), else SF's status."""
        import signal

        if self._stop_requested is not None:
            return 128 + int(signal.Signals[self._stop_requested])
        return int(status)

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
