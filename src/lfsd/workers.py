"""``lfsd serve --workers N``: N server processes on one port, each with its own event loop, pools and threads.

The supervisor binds the listeners (the port, and the metrics port when set) once, then forks the workers, which
accept from the same sockets: the kernel hands each connection to one of them. A pre-forked listener rather than one
``SO_REUSEPORT`` socket per worker, because a second ``lfsd serve`` started on a port in use still fails with "address
in use" (with ``SO_REUSEPORT`` it would silently take part of the traffic), and a worker that closes its copy during
the drain resets nothing: the accept queue belongs to the socket the others still hold.

Signals: the workers run in a process group of their own, so Ctrl-C reaches the supervisor only; it closes its copy
of the listeners (so the port closes when the last worker stops accepting) and passes SIGTERM or SIGINT on to every
worker once; each drains as a single server does (``lfsd.server``). A second signal is passed on too (exit at once).
A worker that dies outside a shutdown is replaced (one that dies while starting stops them all: the settings or
the database are wrong, and every worker would fail the same way); a worker whose supervisor dies drains and exits.
The supervisor exits once every worker has, with the first non-zero worker status, else 0.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from lfsd.config import Settings, host_of, port_of
from lfsd.observability.metrics import forget_process, use_multiprocess

log = logging.getLogger("lfsd")

BACKLOG = 1024
STARTUP_SECONDS = 10.0  # a worker that dies this soon failed to start (bad settings, database down): stop them all


@dataclass(frozen=True)
class Listeners:
    """Sockets bound by the supervisor, shared by every worker."""

    main: socket.socket
    metrics: socket.socket | None
    supervisor: int  # the supervisor's pid: a worker whose parent changes has lost it


def bind(listen: str) -> socket.socket:
    host = host_of(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port_of(listen)), family=family, backlog=BACKLOG)
    sock.set_inheritable(True)
    return sock


Worker = Callable[[Listeners], int]


def supervise(settings: Settings, worker: Worker) -> int:
    """Run ``settings.workers`` copies of ``worker`` on shared listeners until they have all exited."""
    listeners = Listeners(
        bind(settings.listen),
        bind(settings.metrics_listen) if settings.metrics_listen else None,
        os.getpid(),
    )
    directory = Path(tempfile.mkdtemp(prefix="lfsd-metrics-"))
    children: dict[int, float] = {}  # pid -> start time
    signals: list[int] = []
    statuses: list[int] = []

    def start() -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.setpgid(0, 0)
                for handled in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(handled, signal.SIG_DFL)
                use_multiprocess(directory)
                code = worker(listeners)
            except BaseException:
                log.exception("worker failed", extra={"event": "worker_failed"})
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = time.monotonic()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not signals:
            for sock in (listeners.main, listeners.metrics):
                if sock is not None:
                    sock.close()
        signals.append(signum)
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, on_signal)
    # The workers share the supervisor's pages (every module it imported) until they write to them. Frozen, its
    # objects are never visited by a worker's garbage collector, which would otherwise write each one's GC header
    # and so copy nearly every page of the heap into each worker (issue 17: PSS sum of the workers).
    gc.freeze()  # type: ignore[attr-defined]  # mypy takes bench/gc.py for this module (mypy runs over bench/)
    try:
        for _ in range(settings.workers):
            start()
        log.info("workers started", extra={"event": "workers_started", "workers": settings.workers})
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            started = children.pop(pid, None)
            if started is None:
                continue
            forget_process(directory, pid)
            code = os.waitstatus_to_exitcode(status)
            statuses.append(code)
            if signals:
                continue
            if time.monotonic() - started < STARTUP_SECONDS:
                log.error("worker %d exited with %d while starting: stopping", pid, code, extra={"event": "abort"})
                on_signal(signal.SIGTERM, None)
                continue
            log.error("worker %d exited with %d: starting another", pid, code, extra={"event": "worker_exited"})
            start()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return next((code for code in statuses if code != 0), 0)
