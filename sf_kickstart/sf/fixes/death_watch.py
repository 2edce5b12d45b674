"""Fix: a process killed while it held a lock of a Sample Factory queue hangs the whole run (`DeathWatch`).

Sample Factory's processes talk through faster_fifo queues, whose process-shared mutexes are not robust: a process
killed (SIGKILL, the OOM killer) while it held one blocks every other user of that queue forever, the main process's
event loop included, so the runner's own liveness check (`fixes.runner`), which runs on that loop, never runs.

May import: Sample Factory, psutil. Nothing kickstart-specific.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, List, Optional

from sample_factory.utils.utils import log


class DeathWatch:
    """A thread that does not depend on the runner's event loop: when a process has died before the run decided to
    stop (or the loop's own check saw it die) and the run has not ended `grace_s` later, it names the dead process,
    kills the remaining ones and exits the main process with status 1.

    `processes()`: the run's processes (signal_slot's EventLoopProcess); `unexpected()`: whether a death now is one the
    run did not cause (it has not stopped, or it stopped because a process died)."""

    def __init__(self, processes: Callable[[], List], unexpected: Callable[[], bool], grace_s: float = 45.0):
        self.processes = processes
        self.unexpected = unexpected
        self.grace_s = grace_s
        self.finished = False  # set when the runner's run() has returned: nothing left to watch

    def start(self) -> None:
        threading.Thread(target=self._watch, name="death_watch", daemon=True).start()

    def _watch(self) -> None:
        first_seen: Optional[float] = None
        while not self.finished:
            time.sleep(1.0)
            dead = [p.name for p in self.processes() if has_exited(p._process.pid)]
            if dead and self.unexpected() and first_seen is None:
                first_seen = time.time()
            if first_seen is not None and time.time() - first_seen > self.grace_s and not self.finished:
                self._give_up(dead)

    def _give_up(self, dead: List[str]) -> None:
        message = (
            f"process {', '.join(dead)} died and the run did not stop within {self.grace_s:.0f} s (a process killed "
            f"while it held a lock of a Sample Factory queue blocks the processes that share it): killing the rest"
        )
        log.error(message)
        for p in self.processes():
            if p._process.pid is not None and not has_exited(p._process.pid):
                p._process.kill()
        print(f"sf_kickstart: error: {message}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def has_exited(pid: Optional[int]) -> bool:
    """Without reaping it (the main thread's multiprocessing bookkeeping does that): gone or a zombie."""
    import psutil

    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
