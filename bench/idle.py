"""Idle memory of a fresh ``lfsd serve`` (issue 17): where its resident size is, before any request.

Starts ``python -m lfsd serve`` (one worker, SQLite, local disk, a new data directory each time) ``--starts`` times,
waits until it accepts connections and ``--settle`` seconds more, and prints per start: RSS (``VmRSS``), PSS and its
anonymous and file-backed parts (``smaps_rollup``) and the thread count, then the medians. ``--where`` adds, from one
more start, what the resident size is made of: the largest mappings (the Python heap and pymalloc arenas are
anonymous; each shared library and extension module is file-backed) and, per top-level package, the resident size
that importing its modules added (each module's own share, its imports not counted), read by a hook in the server
process when the server is idle. ``--pythonpath DIR`` runs another tree's ``src`` with this environment (A/B runs);
``--env LFSD_NAME=VALUE`` sets one of the server's settings. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

LISTENING_TIMEOUT = 60.0

# Run in the server process before lfsd: wraps every module's execution to read the resident size before and after
# it (minus what its own imports added); SIGUSR1 writes the figures to the file named by LFSD_BENCH_IMPORTS.
IMPORT_HOOK = r"""
import importlib.abc, json, os, signal, sys

def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

_own, _stack = {}, []

class _Measure(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        execute = getattr(loader, "exec_module", None)
        if execute is None or isinstance(loader, type):  # built-in and frozen modules: importer classes, shared
            return spec

        def exec_module(module):
            _stack.append(0)
            before = _rss()
            try:
                execute(module)
            finally:
                added, children = _rss() - before, _stack.pop()
                _own[name] = _own.get(name, 0) + added - children
                if _stack:
                    _stack[-1] += added

        try:
            loader.exec_module = exec_module
        except (AttributeError, TypeError):
            pass
        return spec

sys.meta_path.insert(0, _Measure())
_at_start = _rss()

def _dump(signum, frame):
    with open(os.environ["LFSD_BENCH_IMPORTS"], "w") as out:
        json.dump({"before_imports": _at_start, "idle": _rss(), "modules": _own}, out)

signal.signal(signal.SIGUSR1, _dump)
sys.argv = ["lfsd", *sys.argv[1:]]
import runpy
runpy.run_module("lfsd", run_name="__main__", alter_sys=True)
"""


@dataclass
class Idle:
    rss: float
    pss: float
    pss_anon: float
    pss_file: float
    threads: int


def mib(kib: int) -> float:
    return kib / 1024


def read_idle(pid: int) -> Idle:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    rollup = {
        key: int(value.split()[0])
        for key, value in (
            line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
        )
    }
    return Idle(
        rss=mib(int(status["VmRSS"].split()[0])),
        pss=mib(rollup["Pss"]),
        pss_anon=mib(rollup["Pss_Anon"]),
        pss_file=mib(rollup["Pss_File"]),
        threads=int(status["Threads"]),
    )


def mappings(pid: int) -> Counter[str]:
    """Resident KiB per mapping name: a file's base name, or [heap], [anon], [stack]."""
    rss: Counter[str] = Counter()
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and not fields[0].endswith(":"):
            name = fields[5].rsplit("/", 1)[-1] if len(fields) > 5 else "[anon]"
        elif fields[0] == "Rss:":
            rss[name] += int(fields[1])
    return rss


def free_port() -> int:
    """A free loopback port (closed again before the server binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(python: str, env: dict[str, str], data: Path, hook: bool) -> subprocess.Popen[bytes]:
    """``lfsd serve`` on a new data directory, returned once it logged that it started."""
    log = data / "server.log"
    port = free_port()
    listen = f"127.0.0.1:{port}"
    command = [python, "-c", IMPORT_HOOK] if hook else [python, "-m", "lfsd"]
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*command, "serve", "--listen", listen, "--public-url", f"http://{listen}"],
            cwd=data,
            env={**env, "LFSD_DATA_DIR": str(data)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + LISTENING_TIMEOUT
    while not accepts(port):  # it listens once its lifespan has started: whatever the log level
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise SystemExit(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return server


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def where(python: str, env: dict[str, str], settle: float, top: int) -> None:
    with tempfile.TemporaryDirectory(prefix="lfsd-idle-") as tmp:
        data = Path(tmp)
        figures = data / "imports.json"
        server = start(python, {**env, "LFSD_BENCH_IMPORTS": str(figures)}, data, hook=True)
        try:
            time.sleep(settle)
            server.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while not figures.exists() or not figures.read_text().endswith("}"):
                if time.monotonic() > deadline:
                    raise SystemExit("the server wrote no import figures")
                time.sleep(0.05)
            resident = mappings(server.pid)
        finally:
            stop(server)
        report = json.loads(figures.read_text())
    anon = resident["[anon]"] + resident["[heap]"] + resident["[stack]"]
    print(
        f"\nmappings (one start, with the import hook): RSS {mib(sum(resident.values())):.1f} MiB, anonymous "
        f"{mib(anon):.1f} ([heap] {mib(resident['[heap]']):.1f}), file-backed {mib(sum(resident.values()) - anon):.1f}"
    )
    for name, kib in resident.most_common(top):
        print(f"  {mib(kib):6.2f}  {name}")
    packages: Counter[str] = Counter()
    for module, added in report["modules"].items():
        parts = module.split(".")
        packages[".".join(parts[:2]) if parts[0] == "lfsd" else parts[0]] += added
    imported = sum(packages.values())
    print(
        f"\nimports: {len(report['modules'])} modules added {imported / 2**20:.1f} MiB (RSS before the first "
        f"hooked import {report['before_imports'] / 2**20:.1f}, idle {report['idle'] / 2**20:.1f}); by package:"
    )
    for package, added in packages.most_common(top):
        print(f"  {added / 2**20:6.2f}  {package}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait once it accepts connections")
    parser.add_argument("--where", action="store_true", help="also: mappings and imports by package")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pythonpath", type=Path, help="a tree whose src/ replaces this one's")
    parser.add_argument("--env", action="append", default=[], help="LFSD_NAME=VALUE for the server (repeatable)")
    args = parser.parse_args()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(setting.split("=", 1) for setting in args.env)
    if args.pythonpath is not None:
        env["PYTHONPATH"] = str(args.pythonpath.resolve() / "src")
    runs: list[Idle] = []
    print(f"load average {os.getloadavg()[0]:.2f}; {sys.executable} -m lfsd serve, one worker, SQLite, local disk")
    print(f"{'start':>5} {'RSS MiB':>8} {'PSS':>6} {'anon':>6} {'file':>6} {'threads':>7}")
    for number in range(1, args.starts + 1):
        with tempfile.TemporaryDirectory(prefix="lfsd-idle-") as tmp:
            server = start(sys.executable, env, Path(tmp), hook=False)
            try:
                time.sleep(args.settle)
                idle = read_idle(server.pid)
            finally:
                stop(server)
        runs.append(idle)
        print(f"{number:>5} {idle.rss:8.1f} {idle.pss:6.1f} {idle.pss_anon:6.1f} {idle.pss_file:6.1f} {idle.threads:7}")
    print(
        f"{'median':>6}{statistics.median(r.rss for r in runs):8.1f} {statistics.median(r.pss for r in runs):6.1f} "
        f"{statistics.median(r.pss_anon for r in runs):6.1f} {statistics.median(r.pss_file for r in runs):6.1f}"
    )
    if args.where:
        where(sys.executable, env, args.settle, args.top)


if __name__ == "__main__":
    main()
