"""Batch API (issue 17): 100-object upload batches, p50 and p99 latency unloaded (one client) and under 200 concurrent
clients, and objects per second per core of server CPU, for 1 and N workers.

``--held``: the batches name objects the repository already holds, as a push does again for what it sent before; the
server then also confirms those links for ``gc --unreachable`` (``ObjectIndex.confirm``).

Writes ``bench/out/batch.json`` and ``bench/out/batch.md`` (``batch-held.*`` with ``--held``). Nothing here
asserts; the target is printed beside the figures (>= 20,000 objects/s on one core, near-linear with
``--workers 2``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.e2e.harness import Server  # noqa: E402

from charts import grouped_bars  # noqa: E402
from small import OUT, cpu_seconds, profiled, server_pids  # noqa: E402

LFS_JSON = "application/vnd.git-lfs+json"
OBJECTS = 100


@dataclass
class BatchFigures:
    workers: int
    clients: int
    requests: int
    p50_ms: float
    p99_ms: float
    objects_per_s: float
    objects_per_cpu_s: float  # objects per second per core of server CPU
    errors: int


def _headers(token: str) -> dict[str, str]:
    auth = "Basic " + base64.b64encode(f"bench:{token}".encode()).decode()
    return {"Accept": LFS_JSON, "Content-Type": LFS_JSON, "Authorization": auth}


async def push(url: str, token: str) -> list[dict[str, object]]:
    """Upload ``OBJECTS`` objects, so that later batches find the repository holding them; their specs."""
    bodies = [os.urandom(1000 + i) for i in range(OBJECTS)]
    specs: list[dict[str, object]] = [{"oid": hashlib.sha256(b).hexdigest(), "size": len(b)} for b in bodies]
    endpoint = f"{url}/bench/batch.git/info/lfs/objects/batch"
    async with aiohttp.ClientSession() as session:
        request = json.dumps({"operation": "upload", "objects": specs})
        async with session.post(endpoint, data=request, headers=_headers(token)) as r:
            answer = await r.json(content_type=None)
        for obj, data in zip(answer["objects"], bodies, strict=True):
            upload = obj["actions"]["upload"]
            async with session.put(upload["href"], data=data, headers=upload.get("header", {})) as r:
                assert r.status == 200, await r.text()
    return specs


async def measure(
    url: str,
    token: str,
    clients: int,
    requests: int,
    pids: list[int],
    workers: int,
    specs: list[dict[str, object]] | None = None,
) -> BatchFigures:
    """``specs``: the objects each batch names (held ones); else ``OBJECTS`` new random ones."""
    headers = _headers(token)
    if specs is None:
        specs = [{"oid": os.urandom(32).hex(), "size": 1000 + i} for i in range(OBJECTS)]
    body = json.dumps({"operation": "upload", "objects": specs})
    latencies: list[float] = []
    errors = 0
    left = requests
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as session:

        async def client() -> None:
            nonlocal left, errors
            while left > 0:
                left -= 1
                started = time.perf_counter()
                endpoint = f"{url}/bench/batch.git/info/lfs/objects/batch"
                async with session.post(endpoint, data=body, headers=headers) as r:
                    await r.read()
                    errors += r.status != 200
                latencies.append(time.perf_counter() - started)

        user0, system0 = cpu_seconds(pids)
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        user1, system1 = cpu_seconds(pids)
    cpu = (user1 - user0) + (system1 - system0)
    quantiles = statistics.quantiles(latencies, n=100)
    figures = BatchFigures(
        workers,
        clients,
        requests,
        quantiles[49] * 1000,
        quantiles[98] * 1000,
        requests * OBJECTS / elapsed,
        requests * OBJECTS / cpu if cpu else float("nan"),
        errors,
    )
    print(
        f"  {workers} worker(s), {clients:>3} client(s): p50 {figures.p50_ms:6.1f} ms  p99 {figures.p99_ms:6.1f} ms  "
        f"{figures.objects_per_s:8.0f} objects/s  {figures.objects_per_cpu_s:8.0f} objects per CPU second  "
        f"errors {errors}"
    )
    return figures


def run(workers: int, requests: int, profile: bool, held: bool) -> list[BatchFigures]:
    work = Path(tempfile.mkdtemp(prefix="lfsd-batch-"))
    server = Server.start(work / "data", args=("--workers", str(workers)))
    try:
        server.cli("user", "add", "bench")
        token = server.cli("token", "create", "bench").stdout.splitlines()[-1]
        server.cli("repo", "create", "bench/batch")
        server.cli("repo", "grant", "bench/batch", "bench", "write")
        time.sleep(1.0)
        specs = asyncio.run(push(server.url, token)) if held else None
        pids = server_pids(server.process.pid)
        unloaded = asyncio.run(measure(server.url, token, 1, requests // 10, pids, workers, specs))
        spied = OUT / f"profile-batch-w{workers}" if profile else None
        if spied is not None:
            spied.parent.mkdir(exist_ok=True)
        with profiled(pids, spied) as top:
            loaded = asyncio.run(measure(server.url, token, 200, requests, pids, workers, specs))
        for frame, share in top[:15]:
            print(f"      {share:5.1f} %  {frame}")
        return [unloaded, loaded]
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(figures: list[BatchFigures]) -> str:
    lines = [
        "# lfsd batch API (100-object upload batches)",
        "",
        "Target (issue 17): >= 20,000 objects/s on one core, near-linear with 2 workers.",
        "",
        "| workers | clients | p50 ms | p99 ms | objects/s | objects per CPU second |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {f.workers} | {f.clients} | {f.p50_ms:.1f} | {f.p99_ms:.1f} | {f.objects_per_s:.0f} | "
        f"{f.objects_per_cpu_s:.0f} |"
        for f in figures
    ]
    cases = [f"{clients} client(s)" for clients in sorted({f.clients for f in figures})]
    series = [f"{n} worker(s)" for n in sorted({f.workers for f in figures})]
    charts: list[tuple[str, str, Callable[[BatchFigures], float], str]] = [
        ("batch-throughput.svg", "batch objects per second", lambda f: f.objects_per_s, "objects/s"),
        ("batch-per-cpu.svg", "batch objects per CPU second", lambda f: f.objects_per_cpu_s, "objects/CPU s"),
        ("batch-p99.svg", "batch p99 latency", lambda f: f.p99_ms, "ms"),
    ]
    for name, title, value, unit in charts:
        values = {(f"{f.clients} client(s)", f"{f.workers} worker(s)"): value(f) for f in figures}
        (OUT / name).write_text(grouped_bars(title, unit, cases, series, values))
        lines += ["", f"![{title}]({name})"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--requests", type=int, default=2000, help="batch requests under load (a tenth unloaded)")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy under load")
    parser.add_argument("--held", action="store_true", help="batches name objects the repository already holds")
    args = parser.parse_args()
    print(f"batch API: {OBJECTS}-object upload batches" + (" of held objects" if args.held else ""))
    figures = [
        f for workers in args.workers.split(",") for f in run(int(workers), args.requests, args.profile, args.held)
    ]
    OUT.mkdir(exist_ok=True)
    name = "batch-held" if args.held else "batch"
    (OUT / f"{name}.json").write_text(json.dumps([asdict(f) for f in figures], indent=2))
    (OUT / f"{name}.md").write_text(report(figures))
    print(f"\nwritten: {OUT / f'{name}.json'}, {OUT / f'{name}.md'}")


if __name__ == "__main__":
    main()
