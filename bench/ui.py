"""Web UI (issue 13): the server time to render a repository's page when it holds 100,000 objects.

Builds the app in process on SQLite (the embedded default), links 100,000 objects to one repository, signs in, and
times the pages a person opens: the repository's first page by date and by size, a page deep inside (by cursor),
and the home page. Prints p50 and p95 of the time from request to the last byte over loopback. Nothing asserts;
the target (< 100 ms) is printed beside the figures.

    .venv/bin/python bench/ui.py [--objects 100000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lfsd.app import build_app  # noqa: E402
from lfsd.config import Settings  # noqa: E402
from lfsd.core.repo import RepoPath  # noqa: E402
from lfsd.db.tables import objects, repo_objects  # noqa: E402
from lfsd.resources import open_metadata  # noqa: E402

PASSWORD = "bench password 123"  # noqa: S105 - a throwaway user in a temp dir
TARGET_MS = 100.0


async def fill(settings: Settings, count: int) -> None:
    meta = await open_metadata(settings)
    try:
        await meta.users.add("bench", is_admin=True, password=PASSWORD)
        repo = await meta.repos.create(RepoPath.parse("bench/big"), is_public=False)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        chunk = 5000
        for first in range(0, count, chunk):
            rows = [
                (f"{i:064x}", 1000 + (i * 7919) % 1_000_000, start + timedelta(seconds=i))
                for i in range(first, min(count, first + chunk))
            ]
            async with meta.db.transaction() as conn:
                await conn.execute(objects.insert(), [{"oid": o, "size": s, "created_at": t} for o, s, t in rows])
                await conn.execute(
                    repo_objects.insert(),
                    [{"repo_id": repo.id, "oid": o, "size": s, "created_at": t} for o, s, t in rows],
                )
    finally:
        await meta.close()


async def timed(session: aiohttp.ClientSession, url: str, rounds: int) -> tuple[list[float], str]:
    times, body = [], ""
    for _ in range(rounds):
        started = time.perf_counter()
        async with session.get(url) as response:
            body = await response.text()
            assert response.status == 200, (url, response.status, body[:500])
        times.append((time.perf_counter() - started) * 1000)
    return times, body


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="lfsd-bench-ui-") as tmp:
        settings = Settings(data_dir=Path(tmp), listen="127.0.0.1:0", log_level="warning")
        started = time.perf_counter()
        await fill(settings, count)
        print(f"{count} objects linked in {time.perf_counter() - started:.1f} s")
        server = TestServer(build_app(settings))
        await server.start_server()
        try:
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(base_url=str(server.make_url("/")).rstrip("/"), cookie_jar=jar) as session:
                async with session.get("/ui/login") as response:
                    token = re.search(r'name="csrf" value="([^"]+)"', await response.text())
                assert token is not None
                async with session.post(
                    "/ui/login", data={"csrf": token.group(1), "name": "bench", "password": PASSWORD}
                ) as response:
                    assert response.status == 200, response.status
                _, first = await timed(session, "/ui/repo/bench/big?sort=date&order=desc", 1)
                cursor = re.search(r'cursor=([A-Za-z0-9_-]+)"', first)
                assert cursor is not None
                pages = {
                    "repository, newest first": "/ui/repo/bench/big",
                    "repository, largest first": "/ui/repo/bench/big?sort=size&order=desc",
                    "repository, second page (cursor)": f"/ui/repo/bench/big?cursor={cursor.group(1)}",
                    "home (repository list)": "/ui/",
                }
                print(f"{'page':<36} {'p50 ms':>8} {'p95 ms':>8}   target < {TARGET_MS:.0f} ms")
                for name, url in pages.items():
                    await timed(session, url, 3)  # warm
                    times, _ = await timed(session, url, rounds)
                    p50 = statistics.median(times)
                    p95 = statistics.quantiles(times, n=20)[18]
                    print(f"{name:<36} {p50:>8.1f} {p95:>8.1f}")
        finally:
            await server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.objects, args.rounds))
