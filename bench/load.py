"""Load benchmark: 200 concurrent batch requests of 100 objects each, mixed with 50 concurrent transfers
(25 uploads, 25 downloads of 4 MiB), for a few rounds. Prints requests/s, p50/p99 latency, errors and the server's
peak RSS. Bounded in count and time; loopback only."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.e2e.harness import Server  # noqa: E402

from run import peak_rss_mib, reset_peak  # noqa: E402

LFS_JSON = "application/vnd.git-lfs+json"
MiB = 1024 * 1024


async def timed(latencies: list[float], errors: list[str], coro: Any) -> None:
    started = time.perf_counter()
    try:
        status = await coro
        if status >= 400:
            errors.append(str(status))
    except (aiohttp.ClientError, TimeoutError) as exc:
        errors.append(type(exc).__name__)
    latencies.append(time.perf_counter() - started)


async def run(server: Server, token: str, rounds: int) -> None:
    auth = "Basic " + base64.b64encode(f"bench:{token}".encode()).decode()
    headers = {"Accept": LFS_JSON, "Content-Type": LFS_JSON, "Authorization": auth}
    batch_url = f"{server.url}/bench/load.git/info/lfs/objects/batch"
    connector = aiohttp.TCPConnector(limit=400)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def batch(operation: str, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
            async with session.post(batch_url, json={"operation": operation, "objects": objects}, headers=headers) as r:
                assert r.status == 200, await r.text()
                result: list[dict[str, Any]] = (await r.json(content_type=None))["objects"]
                return result

        # Objects to download during the load.
        stored = [os.urandom(4 * MiB) for _ in range(25)]
        specs = [{"oid": hashlib.sha256(b).hexdigest(), "size": len(b)} for b in stored]
        for obj, body in zip(await batch("upload", specs), stored, strict=True):
            action = obj["actions"]["upload"]
            async with session.put(action["href"], data=body, headers=action["header"]) as r:
                assert r.status == 200
        downloads = [obj["actions"]["download"] for obj in await batch("download", specs)]
        batch_specs = [{"oid": os.urandom(32).hex(), "size": 1000 + i} for i in range(100)]

        async def one_batch() -> int:
            async with session.post(
                batch_url, json={"operation": "upload", "objects": batch_specs}, headers=headers
            ) as r:
                await r.read()
                return r.status

        async def one_download(action: dict[str, Any]) -> int:
            async with session.get(action["href"], headers=action["header"]) as r:
                await r.read()
                return r.status

        batch_lat: list[float] = []
        transfer_lat: list[float] = []
        errors: list[str] = []
        reset_peak(server.process.pid)
        started = time.perf_counter()
        requests = 0
        for round_ in range(rounds):
            fresh = [os.urandom(4 * MiB) for _ in range(25)]
            fresh_specs = [{"oid": hashlib.sha256(b).hexdigest(), "size": len(b)} for b in fresh]
            uploads = [obj["actions"]["upload"] for obj in await batch("upload", fresh_specs)]

            async def one_upload(action: dict[str, Any], body: bytes) -> int:
                async with session.put(action["href"], data=body, headers=action["header"]) as r:
                    await r.read()
                    return r.status

            work = [timed(batch_lat, errors, one_batch()) for _ in range(200)]
            work += [timed(transfer_lat, errors, one_upload(a, b)) for a, b in zip(uploads, fresh, strict=True)]
            work += [timed(transfer_lat, errors, one_download(a)) for a in downloads]
            await asyncio.gather(*work)
            requests += len(work)
            print(f"  round {round_ + 1}: {len(work)} requests, {len(errors)} errors so far", flush=True)
        elapsed = time.perf_counter() - started

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] * 1000

    print(f"\nrequests: {requests} in {elapsed:.1f} s = {requests / elapsed:.0f} requests/s")
    print(
        f"batch (100 objects): p50 {pct(batch_lat, 50):.0f} ms, p99 {pct(batch_lat, 99):.0f} ms, "
        f"{len(batch_lat) * 100 / elapsed:.0f} objects/s"
    )
    print(f"transfers (4 MiB):   p50 {pct(transfer_lat, 50):.0f} ms, p99 {pct(transfer_lat, 99):.0f} ms")
    print(f"errors: {len(errors)} {sorted(set(errors))}")
    print(f"server peak RSS: {peak_rss_mib(server.process.pid):.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lfsd-load-"))
    server = Server.start(work / "data")
    try:
        server.cli("user", "add", "bench")
        token = server.cli("token", "create", "bench").stdout.splitlines()[-1]
        server.cli("repo", "create", "bench/load")
        server.cli("repo", "grant", "bench/load", "bench", "write")
        print(f"load: {args.rounds} rounds of 200 batch requests (100 objects) + 25 uploads + 25 downloads of 4 MiB")
        asyncio.run(run(server, token, args.rounds))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
