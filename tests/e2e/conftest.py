from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.harness import GitUser, Server, require_git_lfs
from tests.s3server import S3Server


@dataclass
class Deployment:
    server: Server
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)

    def user(self, name: str, *, admin: bool = False) -> GitUser:
        self.server.cli("user", "add", name, *(["--admin"] if admin else []))
        token = self.server.cli("token", "create", name).stdout.strip().splitlines()[-1]
        return GitUser(self.tmp / f"home-{name}", name, token, self.server.url)

    def repo(self, path: str, *grants: tuple[str, str], public: bool = False) -> None:
        self.server.cli("repo", "create", path, *(["--public"] if public else []))
        for name, level in grants:
            self.server.cli("repo", "grant", path, name, level)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """lfsd on the embedded SQLite database."""
    require_git_lfs()
    server = Server.start(tmp_path / "data")
    try:
        yield Deployment(server, tmp_path)
    finally:
        code = server.stop()
        assert code == 0, server.log()
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture
def any_deployment(tmp_path: Path, database_url: str | None) -> Iterator[Deployment]:
    """lfsd on each database in turn (SQLite, MariaDB, PostgreSQL)."""
    require_git_lfs()
    server = Server.start(tmp_path / "data", database_url=database_url)
    try:
        yield Deployment(server, tmp_path)
    finally:
        code = server.stop()
        assert code == 0, server.log()
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture(params=["proxied", "direct"])
def s3_deployment(request: pytest.FixtureRequest, tmp_path: Path, s3_server: S3Server) -> Iterator[Deployment]:
    """lfsd on SQLite with object bodies in moto's S3 server."""
    require_git_lfs()
    bucket = s3_server.new_bucket()
    env = {
        "LFSD_STORAGE": f"s3://{bucket}/lfs",
        "LFSD_S3_ENDPOINT_URL": s3_server.endpoint,
        "LFSD_S3_PATH_STYLE": "true",
        "LFSD_S3_PART_SIZE": str(5 * 1024 * 1024),
    }
    if request.param == "direct":
        env["LFSD_S3_DIRECT"] = "true"
    server = Server.start(tmp_path / "data", extra_env=env)
    try:
        yield Deployment(server, tmp_path, env)
    finally:
        code = server.stop()
        assert code == 0, server.log()
        assert "Traceback" not in server.log(), server.log()
