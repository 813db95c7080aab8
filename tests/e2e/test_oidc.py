"""The real git-lfs client authenticating with a CI job's JWT (``http.extraheader``), as docs/administration.md
shows for GitHub Actions and GitLab CI: it pushes and fetches, and is refused once the token has expired."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.harness import GitUser, Server, require_git_lfs, sha256_file, write_random
from tests.jwt_support import AUDIENCE, ISSUER, RULES, SigningKey, write_jwks

pytestmark = pytest.mark.e2e


@pytest.fixture
def oidc_deployment(tmp_path: Path) -> Iterator[tuple[Deployment, SigningKey]]:
    require_git_lfs()
    key = SigningKey.rsa("ci-key")
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    env = {
        "LFSD_OIDC_ISSUER": ISSUER,
        "LFSD_OIDC_AUDIENCE": AUDIENCE,
        "LFSD_OIDC_JWKS_FILE": str(write_jwks(tmp_path / "jwks.json", key, SigningKey.ec("other"))),
        "LFSD_OIDC_ALGORITHMS": "RS256,ES256",
        "LFSD_OIDC_LEEWAY": "0",
        "LFSD_OIDC_RULES": str(rules),
    }
    server = Server.start(tmp_path / "data", extra_env=env)
    try:
        yield Deployment(server, tmp_path), key
    finally:
        code = server.stop()
        assert code == 0, server.log()
        assert "Traceback" not in server.log(), server.log()


def _with_jwt(user: GitUser, work: Path, token: str) -> None:
    user.git("config", "http.extraheader", f"Authorization: Bearer {token}", cwd=work)


def test_a_ci_job_pushes_and_fetches_with_its_jwt_until_it_expires(
    oidc_deployment: tuple[Deployment, SigningKey],
) -> None:
    deployment, key = oidc_deployment
    deployment.server.cli("user", "add", "ci-bot")
    deployment.repo("acme/game")
    # No lfsd credentials at all: the job has only its JWT (the credential store holds nothing usable).
    job = GitUser(deployment.tmp / "home-ci", "ci", "not-a-token", deployment.server.url)
    (job.home / ".git-credentials").write_text("")
    work = job.new_repo(deployment.tmp / "work", deployment.tmp / "origin.git", "acme/game")
    _with_jwt(job, work, key.token())
    oid = write_random(work / "asset.bin", 300_000)
    job.git("add", "asset.bin", cwd=work)
    job.git("commit", "-q", "-m", "asset", cwd=work)
    out = job.git("push", "-q", "origin", "main", cwd=work)
    assert "error" not in out.lower(), out

    clone = deployment.tmp / "clone"
    job.git("clone", "-q", str(deployment.tmp / "origin.git"), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    _with_jwt(job, clone, key.token(ref="refs/heads/feature"))  # a read rule is enough to fetch
    job.git("lfs", "pull", cwd=clone)
    assert sha256_file(clone / "asset.bin") == oid

    # The same job later, its token expired: refused, and nothing is fetched.
    late = deployment.tmp / "late"
    job.git("clone", "-q", str(deployment.tmp / "origin.git"), str(late), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    now = int(time.time())
    _with_jwt(job, late, key.token(iat=now - 3600, nbf=now - 3600, exp=now - 1))
    out = job.git("lfs", "pull", cwd=late, check=False)
    assert "token expired" in out, out
    assert (late / "asset.bin").stat().st_size < 200, out  # still a pointer
    # An expired token cannot push either.
    write_random(late / "new.bin", 1000)
    job.git("add", "new.bin", cwd=late)
    job.git("commit", "-q", "-m", "late", cwd=late)
    refused = job.git("push", "-q", "origin", "main", cwd=late, check=False)
    assert "token expired" in refused and "failed to push" in refused, refused
