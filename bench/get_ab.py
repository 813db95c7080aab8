"""Downloads through signed links, two servers side by side (issue 17): server CPU per GET, interleaved rounds.

Each server runs from its own source tree (``--a``, ``--b``: ``src`` directories, e.g. an export of ``main`` and this
worktree's), on its own data directory; both get the same number of 100 KiB objects, then take turns (ABBA…) serving
every object a few times over one keep-alive connection. The CPU is the server process's user + system time from
``/proc`` (all its threads), so a busy machine moves wall times far more than these. Prints each round and the
medians; ``--profile FILE`` samples server B with py-spy afterwards (raw folded stacks; every thread, in system calls
too, unlike ``small.py --profile``: sendfile and the header's send show). Nothing here asserts.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import Server, cli  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
SIZE = 100 * 1024
LFS_JSON = "application/vnd.git-lfs+json"
PASSWORD = "bench-password-correct-horse"  # noqa: S105 (a throwaway user of a throwaway server)


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / TICK


def start(work: Path, src: str, objects: int) -> tuple[Server, list[bytes]]:
    """A server running ``src``, holding ``objects`` objects; the raw GET requests of their download links."""
    data = work / "data"
    data.mkdir(parents=True)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = src
    try:
        cli(data, "migrate")
        cli(data, "user", "add", "bench", "--password-stdin", stdin=PASSWORD + "\n")
        token = cli(data, "token", "create", "bench").stdout.splitlines()[-1]
        cli(data, "repo", "create", "bench/raw")
        cli(data, "repo", "grant", "bench/raw", "bench", "write")
        server = Server.start(data)
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    conn = http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=60)
    auth = "Basic " + base64.b64encode(f"bench:{token}".encode()).decode()

    def request(method: str, path: str, body: bytes | None, headers: dict[str, str]) -> bytes:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        assert response.status == 200, data
        return data

    def batch(operation: str, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = json.dumps({"operation": operation, "objects": chunk}).encode()
        headers = {"Accept": LFS_JSON, "Content-Type": LFS_JSON, "Authorization": auth}
        data = request("POST", "/bench/raw.git/info/lfs/objects/batch", body, headers)
        result: list[dict[str, Any]] = json.loads(data)["objects"]
        return result

    bodies = [os.urandom(SIZE) for _ in range(objects)]
    wanted = [{"oid": hashlib.sha256(body).hexdigest(), "size": SIZE} for body in bodies]
    for i in range(0, objects, 100):
        for entry, body in zip(batch("upload", wanted[i : i + 100]), bodies[i : i + 100], strict=True):
            action = entry["actions"]["upload"]
            request("PUT", urlsplit(action["href"]).path, body, dict(action.get("header", {})))
    gets: list[bytes] = []
    for i in range(0, objects, 100):
        for entry in batch("download", wanted[i : i + 100]):
            action = entry["actions"]["download"]
            gets.append(
                (
                    f"GET {urlsplit(action['href']).path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                    "User-Agent: git-lfs/3.4.1 (GitHub; linux amd64; go 1.21.5)\r\nAccept-Encoding: gzip\r\n"
                    + "".join(f"{name}: {value}\r\n" for name, value in action.get("header", {}).items())
                    + "\r\n"
                ).encode()
            )
    conn.close()
    return server, gets


def fetch_all(port: int, gets: list[bytes]) -> None:
    """Every GET in turn on one keep-alive connection, each response read whole before the next request."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        for get in gets:
            sock.sendall(get)
            have = 0
            while (end := buffer.find(b"\r\n\r\n", 0, have)) < 0:
                received = sock.recv_into(view[have:])
                assert received, "the server closed the connection"
                have += received
            head = bytes(buffer[:end]).decode("latin-1")
            assert head.startswith("HTTP/1.1 200"), head
            left = int(head.lower().split("content-length: ")[1].split("\r\n")[0]) - (have - end - 4)
            while left > 0:
                received = sock.recv_into(view)
                assert received, "the server closed the connection"
                left -= received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--a", required=True, help="source tree (a src directory) of server A")
    parser.add_argument("--b", default=str(ROOT / "src"), help="source tree of server B (default: this one)")
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--passes", type=int, default=3, help="passes over every object per server and round")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy server B afterwards, raw stacks here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lfsd-get-ab-"))
    servers: dict[str, tuple[Server, list[bytes]]] = {}
    figures: dict[str, list[float]] = {"A": [], "B": []}
    try:
        for name, src in (("A", args.a), ("B", args.b)):
            (work / name).mkdir()
            servers[name] = start(work / name, src, args.objects)
        for server, gets in servers.values():
            fetch_all(server.port, gets)  # warm: page cache, connection set-up, first-request work
        for round_ in range(args.rounds):
            for name in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                server, gets = servers[name]
                before = cpu_seconds(server.process.pid)
                for _ in range(args.passes):
                    fetch_all(server.port, gets)
                used = cpu_seconds(server.process.pid) - before
                figures[name].append(used * 1000 / (len(gets) * args.passes))
            print(f"round {round_}: A {figures['A'][-1]:.3f}  B {figures['B'][-1]:.3f} ms CPU per GET", flush=True)
        for name, src in (("A", args.a), ("B", args.b)):
            print(f"{name}: median {statistics.median(figures[name]):.3f} ms CPU per GET  ({src})")
        if args.profile is not None:
            server, gets = servers["B"]
            spy = subprocess.Popen(
                [
                    shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
                    *("record", "-r", "500", "-f", "raw", "-d", "8", "--nonblocking"),
                    *("-o", str(args.profile), "-p", str(server.process.pid)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
            while spy.poll() is None:
                fetch_all(server.port, gets)
    finally:
        for server, _ in servers.values():
            server.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
