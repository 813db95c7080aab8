"""git-lfs-authenticate end to end in process, on every database: the SSH shell's answer for a key, and the HTTP
API accepting its credential for that repository and operation only, until the key goes or its user is disabled."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import pytest

from lfsd.bootstrap import signing_key
from lfsd.config import Settings
from lfsd.core.audit import Actor
from lfsd.core.auth import Identity
from lfsd.core.git import GitService, Pusher
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.core.ssh_admin import SshKeyAdministration
from lfsd.core.ssh_auth import SshAuthSigner
from lfsd.core.ssh_command import SessionStreams
from lfsd.db.database import utcnow
from lfsd.db.ssh_keys import SqlSshKeys
from lfsd.ssh.shell import TRANSFER_DISABLED, Refused, ShellServices, serve_command
from tests.support import LFS_HEADERS, World, blob, lfs_error

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBPmrEFbCEOBfD4vZgB3j6IPfQYl2yvN3JqV2k0W2Zqo alice@laptop"


class NoGit:
    """The shell's GitLauncher where a test must not reach git: any call fails the test."""

    async def run(
        self,
        service: GitService,
        repo: RepoPath,
        pusher: Pusher | None,
        protocol: str | None,
        streams: SessionStreams | None = None,
    ) -> int:
        raise AssertionError(f"git {service} was started for {repo}")


def _services(world: World, settings: Settings) -> ShellServices:
    return ShellServices(
        keys=SqlSshKeys(world.meta.db),
        repos=world.meta.repos,
        signer=SshAuthSigner(signing_key(settings), settings.ssh_token_ttl),
        base_url="https://lfs.example",
        clock=time.time,
        git=NoGit(),
    )


async def _authenticate(services: ShellServices, key_id: int, command: str) -> dict[str, Any]:
    out: list[bytes] = []
    assert await serve_command(services, key_id, command, None, out.append) == 0
    document: dict[str, Any] = json.loads(b"".join(out))
    return document


def _bearer(document: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": document["header"]["Authorization"]}


async def _add_key(world: World, name: str, line: str = ED25519) -> int:
    admin = SshKeyAdministration(world.meta.users, SqlSshKeys(world.meta.db), world.meta.audit, utcnow)
    return (await admin.add_key(Actor.cli("test"), name, line)).id


async def test_authenticate_scopes_the_credential_to_repository_and_operation(world: World, settings: Settings) -> None:
    await world.user("alice")
    await world.repo("acme/game", grants={"alice": "write"})
    await world.repo("acme/other", grants={"alice": "write"})
    key_id = await _add_key(world, "alice")
    services = _services(world, settings)

    upload = await _authenticate(services, key_id, "git-lfs-authenticate '/acme/game.git' upload")
    assert upload["href"] == "https://lfs.example/acme/game.git/info/lfs"
    assert upload["expires_in"] == settings.ssh_token_ttl
    assert upload["header"]["Authorization"].startswith("Bearer lfsdssh1.")
    item = blob(1000)
    await world.push("acme/game", [item], _bearer(upload))
    # Locks need write on the repository: the upload credential has it.
    response = await world.client.post(
        "/acme/game.git/info/lfs/locks", json={"path": "a.bin"}, headers={**LFS_HEADERS, **_bearer(upload)}
    )
    assert response.status == 201, await response.text()
    # Another repository the user can write to: the credential is not for it.
    await lfs_error(await world.batch("acme/other", "upload", [item.spec()], _bearer(upload)), 404)

    download = await _authenticate(services, key_id, "git-lfs-authenticate acme/game download")
    assert await world.fetch("acme/game", item, _bearer(download)) == item.data
    await lfs_error(await world.batch("acme/game", "upload", [item.spec()], _bearer(download)), 403)

    forged = download["header"]["Authorization"][:-3] + "AAA"
    await lfs_error(await world.batch("acme/game", "download", [item.spec()], {"Authorization": forged}), 401)


@pytest.mark.parametrize("revoke", ["remove key", "disable user", "delete user"])
async def test_a_removed_key_or_disabled_user_stops_at_once(world: World, settings: Settings, revoke: str) -> None:
    await world.user("alice")
    await world.repo("acme/game", grants={"alice": "write"})
    key_id = await _add_key(world, "alice")
    services = _services(world, settings)
    document = await _authenticate(services, key_id, "git-lfs-authenticate acme/game download")
    item = blob(10)
    await world.batch_ok("acme/game", "download", [item], _bearer(document))

    if revoke == "remove key":
        assert await SqlSshKeys(world.meta.db).remove(key_id)
    elif revoke == "disable user":
        await world.meta.users.set_disabled("alice", True)
    else:
        await world.meta.users.delete((await world.meta.users.require("alice")).id)
    await lfs_error(await world.batch("acme/game", "download", [item.spec()], _bearer(document)), 401)
    with pytest.raises(Refused, match="removed or its user disabled"):
        await serve_command(services, key_id, "git-lfs-authenticate acme/game download", None, lambda _: None)


async def test_the_shell_refuses_what_it_must(world: World, settings: Settings) -> None:
    await world.user("alice")
    await world.user("bob")
    await world.repo("acme/game", grants={"alice": "read"})
    alice = await _add_key(world, "alice")
    services = _services(world, settings)

    async def refused(key_id: int, command: str | None) -> str:
        with pytest.raises(Refused) as caught:
            await serve_command(services, key_id, command, None, lambda _: pytest.fail("wrote output"))
        return caught.value.message

    assert "interactive logins are not allowed" in await refused(alice, None)
    assert "'bash' is not served" in await refused(alice, "bash -i")
    assert (
        await refused(alice, "git-lfs-authenticate acme/game upload") == "write access to this repository is required"
    )
    assert await refused(alice, "git-receive-pack 'acme/game.git'") == "write access to this repository is required"
    assert await refused(alice, "git-lfs-authenticate acme/secret download") == "repository not found"
    assert await refused(alice, "git-lfs-transfer acme/game download") == TRANSFER_DISABLED
    assert "removed or its user disabled" in await refused(alice + 100, "git-upload-pack acme/game")
    bob = await _add_key(world, "bob", ED25519.replace("IBPm", "IBPn"))
    assert await refused(bob, "git-upload-pack acme/game") == "repository not found"


async def test_git_lfs_transfer_runs_when_served_after_the_same_checks(world: World, settings: Settings) -> None:
    await world.user("alice")
    await world.repo("acme/game", grants={"alice": "read"})
    key_id = await _add_key(world, "alice")
    calls: list[tuple[str, RepoPath, Operation]] = []

    async def transfer(identity: Identity, repo: RepoPath, operation: Operation, streams: SessionStreams | None) -> int:
        assert identity.repo_scope is None and streams is None
        calls.append((identity.name, repo, operation))
        return 0

    services = replace(_services(world, settings), transfer=transfer)
    assert await serve_command(services, key_id, "git-lfs-transfer acme/game.git download", None, lambda _: None) == 0
    with pytest.raises(Refused, match="write access"):
        await serve_command(services, key_id, "git-lfs-transfer acme/game.git upload", None, lambda _: None)
    assert calls == [("alice", RepoPath("acme/game"), Operation.DOWNLOAD)]
