"""Fix: SIGINT left Sample Factory 2.1.1's event loop at once, racing the final checkpoint, and SIGTERM killed the main
process outright (`StopSignals`).

Both now stop the run the way reaching its budget does: every component stops and the learner writes a final
checkpoint. A second signal interrupts at once. A signal ignored by whoever started the run (a shell's background
job, nohup) stays ignored. The process then exits with 128 + the signal's number (130, 143: the shell's convention,
distinct from SF's INTERRUPTED = 2, which is also our bad-input code).

May import: the standard library. Nothing kickstart-specific.
"""

from __future__ import annotations

import signal
import threading
from typing import Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Installed by the runner (main thread only). The handler only records the request (`requested`: the signal's
    name); the runner acts on it inside its event loop (`fixes.runner.RobustRunner`'s liveness timer)."""

    def __init__(self):
        self.requested: Optional[str] = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) != signal.SIG_IGN:
                signal.signal(sig, self.on_signal)

    def on_signal(self, signum, frame) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt  # SF's event loop ends at once, as before
        self.requested = signal.Signals(signum).name

    def exit_code(self, status) -> int:
        """The process exit status for SF's `status`: 128 + the signal's number after a stop signal, else `status`."""
        if self.requested is not None:
            return 128 + int(signal.Signals[self.requested])
        return int(status)
