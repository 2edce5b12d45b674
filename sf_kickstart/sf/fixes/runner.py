"""Fixes of Sample Factory 2.1.1's `ParallelRunner`: `RobustRunner`, the base of every run through sf_kickstart.train.

  * liveness: the runner stops the experiment with a failure status as soon as any of its processes dies
    (`_check_processes`, a timer on its event loop), forcing the rest down if they stall;
  * `--train_for_seconds` never ended a run (SF never updates `total_train_seconds`);
  * after a failure SF does not join its processes, which keeps the interpreter alive forever (`run`);
  * a process that dies while the run is stopping was waited for forever (`_check_stopping_processes`);
  * a run's last stats never reached tensorboard: SF writes summaries on a timer only, so a short run (a PBT
    interval on a fast machine) could end with no `reward/reward` at all; a final summary is written on stop;
  * `register_msg_handler` / `register_policy_msg_handler` stored the handler itself where SF's message loop
    iterates a list of handlers (the first message crashed the loop); they append to the list;
  * it composes the other fixes: its workers and sampler (`fixes.workers`), its learner (`fixes.learner`), the thread
    that bounds a run blocked by a killed process (`fixes.death_watch`), and the stop signals (`fixes.signals`).
Subclasses choose the learner (`make_learner`), its worker class (`learner_worker_cls`) and the sampler class
(`sampler_factory`).

May import: Sample Factory, the other `fixes` modules. Nothing kickstart-specific.
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional

from signal_slot.signal_slot import Timer

from sample_factory.algo.runners.runner_parallel import ParallelRunner
from sample_factory.algo.utils.misc import ExperimentStatus
from sample_factory.utils.utils import log

from sf_kickstart.sf.fixes.death_watch import DeathWatch
from sf_kickstart.sf.fixes.learner import FixedLearner
from sf_kickstart.sf.fixes.signals import StopSignals
from sf_kickstart.sf.fixes.workers import RobustLearnerWorker, RobustSampler


class RobustRunner(ParallelRunner):
    learner_worker_cls = RobustLearnerWorker

    def __init__(self, cfg):
        super().__init__(cfg)
        self.liveness_timer: Optional[Timer] = None
        self._train_started_at: Optional[float] = None
        self.stop_signals = StopSignals()
        self.died: List[str] = []  # processes the liveness check saw die
        self.death_watch = DeathWatch(self.all_processes, lambda: not self.stopped or bool(self.died))

    @staticmethod
    def _register_msg_handler(handlers_dict, key, func):
        handlers_dict.setdefault(key, []).append(func)  # SF 2.1.1: `handlers_dict[key] = func`, then iterates it

    def make_learner(self, cfg, env_info, policy_versions, policy_id, param_server):
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
            self.stop_signals.install()
            self.death_watch.start()
        return status

    def run(self):
        try:
            return self._run()
        finally:
            self.death_watch.finished = True

    def _run(self):
        status = super().run()
        # SF joins its processes only on the clean path: give them a moment, then terminate whatever is left
        grace = 10.0 if status == ExperimentStatus.SUCCESS else 1.0
        for p in self.all_processes():
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
        """The process exit status for `status` (`fixes.signals`: 128 + the signal's number after a stop signal)."""
        return self.stop_signals.exit_code(status)

    def all_processes(self):
        return list(self.processes) + list(getattr(self.sampler, "processes", []))

    def _check_processes(self):
        if self.stopped:
            return
        if self.stop_signals.requested is not None:
            log.warning(
                f"{self.stop_signals.requested}: writing a final checkpoint and stopping (send it again to stop at once)"
            )
            self._stop_training()
            self.status = ExperimentStatus.INTERRUPTED
            return
        for p in self.all_processes():
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
        if not was_stopped and self.env_steps:
            self._final_summaries()
        super()._stop_training(failed)
        if not was_stopped and self.stopped and self.event_loop is not None:
            # SF waits for every component to report that it stopped; one whose process dies while stopping (e.g.
            # its final checkpoint cannot be written) never reports, and SF's timers are stopped by now
            self._stopping_timer = Timer(self.event_loop, 1.0)
            self._stopping_timer.timeout.connect(self._check_stopping_processes)

    def _final_summaries(self) -> None:
        """The last stats, whatever SF's summary timer last saw. A failure to write them must not stop the stop."""
        try:
            self._report_experiment_summaries()
        except Exception as exc:  # noqa: BLE001 - logged; the run still stops and saves
            log.warning(f"Could not write the final summaries: {exc!r}")

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
        for p in self.all_processes():
            if p._process.pid is not None and p._process.is_alive():
                p._process.terminate()
        self.status = ExperimentStatus.FAILURE
        self.event_loop.stop()
