"""The first start's admin token: in a private file or from the environment, never in the server's output."""

from __future__ import annotations

import asyncio
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from lfsd.bootstrap import ADMIN_TOKEN_FILE
from lfsd.config import Settings
from lfsd.resources import open_metadata
from tests.e2e.harness import Server, lfsd_env
from tests.support import LFS_HEADERS, basic


def _wait_for(server: Server, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


def _is_admin_token(data_dir: Path, token: str) -> bool:
    async def check() -> bool:
        meta = await open_metadata(Settings(data_dir=data_dir))
        try:
            identity = await meta.users.identity_for_token(token)
            return identity is not None and identity.name == "admin" and identity.is_admin
        finally:
            await meta.close()

    return asyncio.run(check())


def _server_accepts(server: Server, token: str) -> int:
    """The status of an admin-only request (a push that creates a repository) made with ``token``."""

    async def request() -> int:
        body = {"operation": "upload", "objects": [{"oid": "a" * 64, "size": 1}]}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{server.url}/new/repo.git/info/lfs/objects/batch",
                json=body,
                headers={**LFS_HEADERS, **basic("admin", token)},
            ) as response,
        ):
            return response.status

    return asyncio.run(request())


def test_token_goes_to_a_private_file_and_never_to_the_log(tmp_path: Path) -> None:
    data = tmp_path / "d"
    server = Server.start(data)
    try:
        _wait_for(server, ADMIN_TOKEN_FILE)
        path = data / ADMIN_TOKEN_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text().strip()
        assert _server_accepts(server, token) == 200
    finally:
        assert server.stop() == 0
    log = server.log()
    assert token not in log and "lfsd_" not in log
    assert f"$(cat {path.resolve()})" in log  # the ready-to-paste git config line reads the file
    assert _is_admin_token(data, token)

    again = Server.start(data)
    assert again.stop() == 0
    assert ADMIN_TOKEN_FILE not in again.log()
    assert path.read_text().strip() == token


def test_token_from_the_environment_is_used_and_not_written(tmp_path: Path) -> None:
    data = tmp_path / "d"
    token = "lfsd_" + secrets.token_hex(32)
    server = Server.start(data, extra_env={"LFSD_INITIAL_ADMIN_TOKEN": token})
    try:
        _wait_for(server, "LFSD_INITIAL_ADMIN_TOKEN")
        assert _server_accepts(server, token) == 200
        assert _server_accepts(server, "lfsd_" + secrets.token_hex(32)) == 401
    finally:
        assert server.stop() == 0
    assert token not in server.log()
    assert not (data / ADMIN_TOKEN_FILE).exists()


def test_an_existing_token_file_is_left_alone(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / ADMIN_TOKEN_FILE).write_text("from an earlier database\n")
    server = Server.start(data)
    try:
        _wait_for(server, "lfsd token create admin")
    finally:
        assert server.stop() == 0
    assert (data / ADMIN_TOKEN_FILE).read_text() == "from an earlier database\n"
    assert "lfsd_" not in server.log()


def test_a_weak_initial_token_is_refused_without_being_repeated(tmp_path: Path) -> None:
    weak = "lfsd_short-and-guessable"
    result = subprocess.run(
        [sys.executable, "-m", "lfsd", "serve", "--listen", "127.0.0.1:0"],
        env=lfsd_env(tmp_path / "d", LFSD_INITIAL_ADMIN_TOKEN=weak),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "initial_admin_token" in result.stderr and weak not in result.stderr + result.stdout
