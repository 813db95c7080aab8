"""Every route of the admin API, walked from its route table: anonymous callers get 401 with a challenge, users
who are not server admins (or admins without an admin-scope token) get 403 on every server-admin operation, and
each error is the LFS JSON body with the request id."""

from __future__ import annotations

import pytest

from lfsd.core.audit import AuditQuery, Outcome
from lfsd.http.admin_api.routes import BASE, OPENAPI, OPERATIONS, Operation
from lfsd.http.errors import AUTHENTICATE_HEADER
from tests.support import World, lfs_error

SAMPLE = {"{repo}": "acme/game", "{name}": "alice", "{id}": "1", "{owner}": "acme"}


def _url(op: Operation) -> str:
    path = BASE + op.template
    for placeholder, value in SAMPLE.items():
        path = path.replace(placeholder, value)
    return path


async def test_every_operation_needs_credentials_and_admin_operations_a_server_admin(world: World) -> None:
    await world.user("alice")
    await world.repo("acme/game", grants={"alice": "admin"})  # a repository admin is not a server admin
    admin_ops = [op for op in OPERATIONS if op.access == "admin"]
    assert admin_ops and all(op.access in ("admin", "self") for op in OPERATIONS)
    for op in OPERATIONS:
        anonymous = await world.client.request(op.method, _url(op), json={})
        await lfs_error(anonymous, 401)
        assert anonymous.headers["WWW-Authenticate"] == AUTHENTICATE_HEADER
    for op in admin_ops:
        for who in ("alice", "root"):  # root: a server admin, but with a write token
            body = await lfs_error(
                await world.client.request(op.method, _url(op), json={}, headers=world.auth(who)), 403
            )
            assert "server administrator" in body["message"], (op.template, body)
    denied = await world.meta.audit.entries(AuditQuery(limit=1000))
    assert sum(entry.outcome is Outcome.DENIED for entry in denied) == 2 * len(admin_ops)


@pytest.mark.parametrize("database_url", [None], indirect=False)
async def test_the_document_needs_no_credentials(world: World) -> None:
    response = await world.client.get(BASE + OPENAPI.template)
    assert response.status == 200 and response.content_type == "application/json"
