"""`workers = N`: N server processes on one port and one folder.

Each worker is a whole Threadline (its own index, watcher and event hub) bound with SO_REUSEPORT,
so the kernel spreads connections across them and reads scale with cores. They agree on the files
the way any two processes do: every writer takes the thread's flock, each watcher sees the others'
appends within milliseconds, and the shared event journal gives every message the same event id
in every worker. The parent only forks, forwards SIGTERM/SIGINT, and restarts a worker that dies.
A worker whose parent dies (`kill -9`, the OOM killer) is sent SIGTERM by the kernel and stops:
none is left serving the port with nobody to stop it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

RESTART_PAUSE = 1.0
QUICK_EXIT = 10.0  # a worker that dies this soon after it started failed to start
GIVE_UP_AFTER = 3  # quick deaths in a row: restarting will not help; stop with its code


PR_SET_PDEATHSIG = 1  # prctl(2)


def _stop_with_parent(parent: int) -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux's prctl; elsewhere
    nothing), and exit now if it already has (this process is then the init's child)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


def _spawn(serve_one: Callable[[], int]) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker: default signal handling, then a normal server
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _stop_with_parent(parent)
        code = 1
        try:
            code = serve_one()
        except BaseException:  # os._exit below skips the usual report: log it here
            log.exception("worker %d failed", os.getpid())
        finally:
            logging.shutdown()
            os._exit(code)
    return pid


def run(count: int, serve_one: Callable[[], int]) -> int:
    """Fork `count` workers running `serve_one` and supervise them until told to stop."""
    stopping = False
    children: set[int] = set()

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    started: dict[int, float] = {}

    def spawn() -> None:
        pid = _spawn(serve_one)
        children.add(pid)
        started[pid] = time.monotonic()

    for _ in range(count):
        spawn()
    log.info("started %d workers", count)
    worst = 0
    quick = 0  # workers in a row that died soon after starting
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        children.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        worst = max(worst, abs(code))
        quick = quick + 1 if time.monotonic() - started.pop(pid, 0.0) < QUICK_EXIT else 0
        if stopping:
            continue
        if quick >= GIVE_UP_AFTER:
            log.error("worker %d exited with %d, the %d worker in a row to die as it started; "
                      "stopping (see the error above)", pid, code, quick)
            forward(signal.SIGTERM, None)
            continue
        log.error("worker %d exited with %d; starting another", pid, code)
        time.sleep(RESTART_PAUSE)
        if not stopping:  # a SIGTERM during the pause: no new worker nobody would stop
            spawn()
    return worst
