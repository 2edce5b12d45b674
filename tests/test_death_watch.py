"""`DeathWatch` (sf_kickstart/sf/fixes/death_watch.py) in the situation it exists for, made deterministic.

A process killed while it holds the process-shared mutex of a faster_fifo queue (they are not robust) blocks every
other user of that queue forever; when the main process is one of them its event loop, and the liveness check on it,
never run again. Here a stand-in main process (`blocked_main`, run with `python -c`) starts two real signal_slot
`EventLoopProcess`es, one of which locks a real faster_fifo queue's mutex and holds it; the main thread then puts into
that queue, as the runner's loop would, and blocks. The test kills the holder with SIGKILL (it dies holding the lock)
and checks that `DeathWatch` alone ends the run: exit status 1 a short grace after the death, a message naming the dead
process, the other process killed, while the main loop stayed blocked to the end. The control run without `DeathWatch`
shows that nothing else would have ended it.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from sf_kickstart.paths import REPO_ROOT as REPO

GRACE_S = 2.0
PTHREAD_MUTEX_PSHARED_BIT = 128  # glibc: __kind of a process-shared PTHREAD_MUTEX_NORMAL mutex
MUTEX_SIZE = 40  # sizeof(pthread_mutex_t), x86-64 / aarch64 glibc


def queue_mutex_address(queue) -> int:
    """Address of the pthread mutex inside a faster_fifo queue's shared object buffer. The buffer holds a C++
    `Queue` (some size_t fields, a mutexattr, the mutex, a condattr, two conds); rather than hard-code the offset, find
    the one 8-aligned window that looks like an unlocked process-shared normal mutex (all zero but __kind)."""
    import ctypes

    raw = bytes(queue.queue_obj_buffer)
    found = []
    for off in range(0, len(raw) - MUTEX_SIZE + 1, 8):
        window = raw[off:off + MUTEX_SIZE]
        kind = int.from_bytes(window[16:20], sys.byteorder)
        if kind == PTHREAD_MUTEX_PSHARED_BIT and not window[:16].strip(b"\0") and not window[20:].strip(b"\0"):
            found.append(off)
    assert len(found) == 1, f"cannot locate the mutex in faster_fifo's queue object (candidates: {found}): {raw!r}"
    return ctypes.addressof(queue.queue_obj_buffer) + found[0]


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.pthread_mutex_lock.argtypes = libc.pthread_mutex_trylock.argtypes = [ctypes.c_void_p]
    return libc


def _hold_forever(mutex: int, held) -> None:
    """The holder process: takes the queue's lock as faster_fifo's put/get do, and is killed before releasing it."""
    assert _libc().pthread_mutex_lock(mutex) == 0
    held.set()
    while True:
        time.sleep(60)


def _sleep_forever() -> None:
    while True:
        time.sleep(60)


class StandInRunner:
    """What DeathWatch needs of RobustRunner (`all_processes`, and `unexpected` as RobustRunner words it); its loop does
    nothing: the run never stops by itself and its liveness check never sees a death."""

    def __init__(self, processes):
        self.processes = processes
        self.stopped = False
        self.died = []

    def all_processes(self):
        return list(self.processes)

    def unexpected(self) -> bool:
        return not self.stopped or bool(self.died)


def blocked_main(grace_s: float, watch: bool) -> None:
    """The stand-in main process (run in a subprocess: DeathWatch ends it with os._exit)."""
    import multiprocessing

    import faster_fifo
    from signal_slot.signal_slot import EventLoopProcess

    from sf_kickstart.sf.fixes.death_watch import DeathWatch

    ctx = multiprocessing.get_context("fork")
    queue = faster_fifo.Queue(1000)
    mutex = queue_mutex_address(queue)
    held = ctx.Event()
    holder = EventLoopProcess("holder_proc0", ctx, init_func=_hold_forever, args=(mutex, held), daemon=True)
    bystander = EventLoopProcess("bystander_proc0", ctx, init_func=_sleep_forever, daemon=True)
    holder.start()
    bystander.start()
    assert held.wait(60), "the holder did not take the queue's lock"
    busy = _libc().pthread_mutex_trylock(mutex)  # EBUSY: the queue's lock is taken (by the holder)
    runner = StandInRunner([holder, bystander])
    if watch:
        DeathWatch(runner.all_processes, runner.unexpected, grace_s=grace_s).start()
    print(f"holder={holder._process.pid} bystander={bystander._process.pid} trylock={busy}", flush=True)
    queue.put("message", block=True, timeout=1e6)  # the main loop's next queue operation: waits for the lock
    print("queue.put returned", flush=True)


def _start(tmp_path, watch: bool):
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    code = f"from tests.test_death_watch import blocked_main; blocked_main({GRACE_S!r}, {watch!r})"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=o, stderr=e)
    deadline = time.time() + 60
    while not re.search(r"holder=\d+ bystander=\d+ trylock=-?\d+", out.read_text()):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError(f"the stand-in main process did not start (rc={proc.poll()}):\n{err.read_text()}")
        time.sleep(0.05)
    pids = dict(re.findall(r"(\w+)=(-?\d+)", out.read_text()))
    return proc, out, err, int(pids["holder"]), int(pids["bystander"]), int(pids["trylock"])


def _exited(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _kill(*pids: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _blocked(proc, out) -> bool:
    """The main thread is still waiting on the queue's lock."""
    return proc.poll() is None and "queue.put returned" not in out.read_text()


def test_death_watch_ends_a_run_whose_main_loop_is_blocked_on_a_lock_a_killed_process_held(tmp_path):
    proc, out, err, holder, bystander, busy = _start(tmp_path, watch=True)
    try:
        assert busy == errno.EBUSY, f"the holder does not hold the queue's lock (trylock={busy})"
        time.sleep(0.5)
        assert _blocked(proc, out), "the main loop's queue.put did not block on the held lock"
        os.kill(holder, signal.SIGKILL)
        killed_at = time.time()
        try:
            rc = proc.wait(GRACE_S + 20)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the run was still blocked {GRACE_S + 20:.0f} s after the death") from None
        took = time.time() - killed_at
    finally:
        _kill(proc.pid, holder, bystander)
        proc.wait(10)
    text = err.read_text()
    assert rc == 1, f"rc={rc}\n{text}"
    assert GRACE_S < took < GRACE_S + 10, f"ended {took:.1f} s after the death (grace {GRACE_S} s)"
    assert "queue.put returned" not in out.read_text(), "the main loop was not blocked: DeathWatch was not needed"
    assert (f"sf_kickstart: error: process holder_proc0 died and the run did not stop within {GRACE_S:.0f} s"
            in text), text
    deadline = time.time() + 10
    while not _exited(bystander) and time.time() < deadline:
        time.sleep(0.1)
    assert _exited(bystander), "DeathWatch did not kill the run's remaining process"


def test_without_death_watch_the_same_run_stays_blocked(tmp_path):
    """The control: with the holder dead and no DeathWatch, nothing ends the run (the situation is real)."""
    proc, out, err, holder, bystander, busy = _start(tmp_path, watch=False)
    try:
        assert busy == errno.EBUSY
        os.kill(holder, signal.SIGKILL)
        time.sleep(GRACE_S + 3)
        assert _exited(holder)
        assert _blocked(proc, out), f"rc={proc.poll()}\n{err.read_text()}"
    finally:
        _kill(proc.pid, holder, bystander)
        proc.wait(10)
