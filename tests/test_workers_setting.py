"""``workers``: a number, or ``auto`` (one per usable core, within a container's CPU quota)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lfsd.config import Settings, SettingsError, usable_cores


def test_auto_is_one_worker_per_usable_core() -> None:
    assert Settings(workers="auto").workers == usable_cores() >= 1
    assert Settings(workers="3").workers == 3
    with pytest.raises(SettingsError):
        Settings(workers="0")


def test_a_container_cpu_quota_lowers_auto(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == affinity
    cpu_max.write_text("50000 100000\n")  # half a CPU: still one worker
    assert usable_cores(cpu_max) == 1
    cpu_max.write_text(f"{100000 * (affinity + 8)} 100000\n")  # a quota above the cores there are
    assert usable_cores(cpu_max) == affinity
    assert usable_cores(tmp_path / "missing") == affinity
