"""The upload path without the database (issue 17): server CPU per PUT of HTTP body reading, admission and the store.

A server process runs lfsd's own ``upload`` handler, ``LfsService.upload`` and the local store (instrumented, as
``app.py`` stacks it) with an index that records nothing, so what is measured is everything an upload costs except
the link transaction. The client sends 1000 x 100 KiB PUTs over one keep-alive connection (as ``bench/small.py``
does), then ``--big`` MiB in one PUT from curl. Prints server CPU ms per object (user + kernel), MB/s, and with
``--strace`` the server's syscall counts per small object. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def serve(port: int, data: Path, fsync: bool, direct: bool) -> None:
    from aiohttp import web

    from lfsd.config import Settings
    from lfsd.core.oid import Oid
    from lfsd.core.service import LfsService
    from lfsd.core.signing import LinkSigner
    from lfsd.http.inflight import InFlight
    from lfsd.http.keys import INFLIGHT, SERVICE, SETTINGS
    from lfsd.http.transfer import UPLOAD_TARGET, Target, upload
    from lfsd.memory import MemoryReleaser, tune_malloc
    from lfsd.storage.buffers import BufferPool
    from lfsd.storage.instrumented import InstrumentedStore
    from lfsd.storage.local import LocalStore

    class NoIndex:
        async def link(self, repo_id: int, objects: dict[Oid, int], uploader_id: int | None = None) -> None:
            return None

    class NoObserver:
        def observe(self, backend: str, operation: str, seconds: float, *, failed: bool) -> None:
            return None

    tune_malloc()  # as ``lfsd serve`` does (lfsd.server)
    settings = Settings(data_dir=data, fsync=fsync, direct_io=direct)
    local = LocalStore(data, BufferPool(settings.buffer_size, settings.transfer_memory), fsync=fsync, direct_io=direct)
    local.prepare()
    store = InstrumentedStore(local, "local", NoObserver())
    service = LfsService(NoIndex(), store, LinkSigner(b"k" * 32, 60), time.time)  # type: ignore[arg-type]

    @web.middleware
    async def target(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        size = request.content_length or 0
        request[UPLOAD_TARGET] = Target(1, Oid.parse(request.match_info["oid"]), size, "user:1", user_id=1)
        return await handler(request)

    app = web.Application(middlewares=[target])
    app[SETTINGS] = settings
    app[SERVICE] = service
    app[INFLIGHT] = InFlight(MemoryReleaser())
    app.router.add_put("/objects/{oid}", upload)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def cpu(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    for _ in range(400):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100 * 1024)
    parser.add_argument("--big", type=int, default=0, help="MiB of one big PUT from curl (0: none)")
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--no-direct", action="store_true")
    parser.add_argument("--strace", action="store_true", help="count the server's syscalls in the small PUTs")
    parser.add_argument("--perf", type=Path, default=None, help="record the small PUTs with perf (kernel stacks too)")
    parser.add_argument("--spy", type=Path, default=None, help="sample the small PUTs with py-spy (raw format)")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the lfsd tree the server imports")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument(
        "--shards-exist",
        action="store_true",
        help="create the objects' shard directories before the timed PUTs (a store past a few hundred thousand "
        "objects has all 65,536; a fresh one makes one or two directories for most uploads)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the store in place (its path is printed): deleting thousands of files makes the next run's "
        "inode allocations slower for minutes on ext4 without a journal, so a series deletes at its end",
    )
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]), not args.no_fsync, not args.no_direct)
        return
    work = Path(tempfile.mkdtemp(prefix="lfsd-put-", dir=args.work))
    port = free_port()
    flags = [*(["--no-fsync"] if args.no_fsync else []), *(["--no-direct"] if args.no_direct else [])]
    env = {**os.environ, "PYTHONPATH": str(args.src)}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(work / "data"), *flags], env=env)
    try:
        wait_port(port)
        bodies = [os.urandom(args.size) for _ in range(args.objects)]
        oids = [hashlib.sha256(body).hexdigest() for body in bodies]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for oid, body in zip(oids[:20], bodies[:20], strict=True):  # warm up
            conn.request("PUT", f"/objects/{oid}", body=body)
            assert conn.getresponse().read() == b""
        if args.shards_exist:
            for oid in oids:
                (work / "data" / "objects" / oid[:2] / oid[2:4]).mkdir(parents=True, exist_ok=True)
            os.sync()
        tracer = None
        if args.strace:
            out = work / "strace.txt"
            tracer = subprocess.Popen(["strace", "-c", "-f", "-o", str(out), "-p", str(server.pid)])
            time.sleep(1.0)
        if args.spy:
            spy = str(Path(sys.executable).with_name("py-spy"))
            command = [spy, "record", "-r", "500", "--gil", "--format", "raw", "-o", str(args.spy)]
            command += ["-p", str(server.pid)]
            tracer = subprocess.Popen(command, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        if args.perf:
            command = ["perf", "record", "-q", "-g", "-F", "2000", "-o", str(args.perf), "-p", str(server.pid)]
            tracer = subprocess.Popen(command)
            time.sleep(1.0)
        user0, system0 = cpu(server.pid)
        t0 = time.perf_counter()
        for oid, body in zip(oids, bodies, strict=True):
            conn.request("PUT", f"/objects/{oid}", body=body)
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
        elapsed = time.perf_counter() - t0
        user1, system1 = cpu(server.pid)
        n = args.objects
        print(
            f"{n} x {args.size // 1024} KiB PUT: {n * args.size / elapsed / 1e6:6.1f} MB/s, server cpu "
            f"{1000 * (user1 - user0 + system1 - system0) / n:5.3f} ms/object "
            f"(kernel {1000 * (system1 - system0) / n:5.3f})"
        )
        if tracer is not None:
            tracer.send_signal(2)
            tracer.wait()
        if args.strace:
            print(f"syscalls per object ({n} objects):")
            for line in out.read_text().splitlines()[2:]:
                parts = line.split()
                if len(parts) >= 5 and parts[3].isdigit():
                    print(f"  {parts[-1]:<20} {int(parts[3]) / n:6.2f}   ({parts[1]} s total)")
        if args.big:
            big = work / "big.bin"
            digest = hashlib.sha256()
            with big.open("wb") as f:
                for _ in range(args.big):
                    chunk = os.urandom(1 << 20)
                    digest.update(chunk)
                    f.write(chunk)
            if args.perf:
                command = ["perf", "record", "-q", "-g", "-F", "1000", "-o", f"{args.perf}.big", "-p", str(server.pid)]
                tracer = subprocess.Popen(command)
                time.sleep(1.0)
            user0, system0 = cpu(server.pid)
            t0 = time.perf_counter()
            url = f"http://127.0.0.1:{port}/objects/{digest.hexdigest()}"
            result = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(big), url],
                capture_output=True,
                text=True,
                check=True,
            )
            elapsed = time.perf_counter() - t0
            user1, system1 = cpu(server.pid)
            assert result.stdout == "200", result.stdout + result.stderr
            if args.perf and tracer is not None:
                tracer.send_signal(2)
                tracer.wait()
            print(
                f"1 x {args.big} MiB PUT: {args.big * (1 << 20) / elapsed / 1e6:6.1f} MB/s, server cpu "
                f"{user1 - user0 + system1 - system0:5.2f} s (kernel {system1 - system0:5.2f})"
            )
    finally:
        server.terminate()
        server.wait()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
