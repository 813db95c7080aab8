"""A started server that nobody has used yet loads none of the heavy optional packages (issue 17: idle RSS).

Each of these is loaded when first needed (a password, a page of the web UI, a command of the CLI) or only when
configured (S3, Redis, OIDC, the embedded SSH server, a MySQL or PostgreSQL database); Alembic runs in a child.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, json, sys
from aiohttp.test_utils import TestClient, TestServer
import lfsd.cli  # a server starts through the command line: its module is resident too
from lfsd.app import build_app
from lfsd.config import Settings

async def main() -> None:
    async with TestClient(TestServer(build_app(Settings(data_dir=sys.argv[1])))) as client:  # started and idle
        print(json.dumps(sorted(sys.modules)))
        # The admin API's first request loads its handlers and pydantic, and is answered.
        response = await client.get("/api/v1/openapi.json")
        document = await response.json()
        print(json.dumps([response.status, sorted(document["components"]["schemas"]), "pydantic" in sys.modules]))

asyncio.run(main())
"""

# Prefixes of module names an idle server must not have imported.
HEAVY = (
    "jinja2",  # the web UI's templates: the first page
    "aiohttp_jinja2",
    "markupsafe",
    "argon2",  # the first password
    "alembic",  # migrations run in a child process
    "sqlalchemy.orm",  # never: lfsd.db.aio instead of sqlalchemy.ext.asyncio
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.mysql",  # only on that database
    "sqlalchemy.dialects.postgresql",
    "asyncssh",  # only with ssh_listen
    "jwt",  # only with oidc_issuer
    "cryptography",
    "redis",  # only with redis_url
    "botocore",  # only with s3:// storage
    "aiobotocore",
    "tqdm",  # only lfsd fsck
    "lfsd.gc_command",  # the CLI's other commands
    "lfsd.ssh_cli",
    "lfsd.usage_cli",
    "lfsd.fsck_output",
    "pydantic_settings",  # Settings reads the environment itself
    "pydantic",  # the admin API's request bodies: its first request (Settings and the LFS bodies parse their own)
    "pydantic_core",
    "lfsd.http.admin_api.models",
)


def test_an_idle_server_has_not_loaded_the_heavy_optional_packages(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    idle, first_admin_request = result.stdout.splitlines()[-2:]
    loaded: list[str] = json.loads(idle)
    assert [name for name in loaded if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY)] == []
    status, schemas, pydantic_loaded = json.loads(first_admin_request)
    assert (status, "NewUser" in schemas, pydantic_loaded) == (200, True, True)
