"""``tune_malloc``: allocations the size of asyncio's socket reads come from the heap, not a map of their own each.

Run in a child process: the tuning is process-wide."""

from __future__ import annotations

import subprocess
import sys

import pytest

_CHILD = r"""
import ctypes, sys
from lfsd.memory import tune_malloc

def in_heap(address):
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            start, end = (int(part, 16) for part in line.split()[0].split("-"))
            if start <= address < end:
                return True
    return False

tuned = sys.argv[1] == "tuned"
if tuned:
    assert tune_malloc()
# One socket read's worth (asyncio reads 256 KiB at a time), and one a little under the threshold.
answers = []
for size in (256 * 1024, 3 * 1024 * 1024):
    buffer = ctypes.create_string_buffer(size)
    answers.append(in_heap(ctypes.addressof(buffer)))
    del buffer
print(answers)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and /proc")
def test_socket_read_sized_allocations_come_from_the_heap_once_tuned() -> None:
    def run(mode: str) -> str:
        result = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
        return result.stdout.strip()

    assert run("default") == "[False, False]"  # glibc maps each on its own
    assert run("tuned") == "[True, True]"
