"""Server CPU by thread: each process's main thread (its event loop) against all its other threads (the SQLite
driver's thread, executor threads), user and kernel each, from ``/proc/PID/task/TID/stat``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")

# (pid, tid) -> user and kernel CPU seconds of that thread
Snapshot = dict[tuple[int, int], tuple[float, float]]


@dataclass(frozen=True)
class ThreadCpu:
    """CPU seconds of the main threads and of every other thread of a set of processes."""

    loop_user: float = 0.0
    loop_kernel: float = 0.0
    other_user: float = 0.0
    other_kernel: float = 0.0


def user_kernel(stat: Path) -> tuple[float, float]:
    """User and kernel CPU seconds from a ``stat`` file of ``/proc`` (a process's or one thread's)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def snapshot(pids: list[int]) -> Snapshot:
    """Every thread's CPU seconds now (a thread that ends while it is read is left out)."""
    times: Snapshot = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                times[pid, int(task.name)] = user_kernel(task / "stat")
            except (OSError, ValueError):
                continue
    return times


def split(before: Snapshot, after: Snapshot) -> ThreadCpu:
    """The CPU the threads used between two snapshots, the main threads (``tid == pid``) apart.

    Summed thread by thread, as each thread's own times only grow: the kernel splits a process's total into user
    and kernel time separately from its threads', so a process's total less its main thread's can go below zero for
    an idle rest. A thread that started meanwhile counts in full; one that ended meanwhile is missing, so the split
    can add up to a little less than the process's CPU (lfsd's threads live as long as the server).
    """
    loop_user = loop_kernel = other_user = other_kernel = 0.0
    for (pid, tid), (user, kernel) in after.items():
        user0, kernel0 = before.get((pid, tid), (0.0, 0.0))
        if tid == pid:
            loop_user += user - user0
            loop_kernel += kernel - kernel0
        else:
            other_user += user - user0
            other_kernel += kernel - kernel0
    return ThreadCpu(loop_user, loop_kernel, other_user, other_kernel)
