"""SSH public keys: anyone's for server admins (``/api/v1/users/{name}/ssh-keys``), one's own for every user
(``/api/v1/user/ssh-keys``), and removal by id (``/api/v1/ssh-keys/{id}``): the use cases of ``core/ssh_admin.py``,
which check who may and audit it."""

from __future__ import annotations

from aiohttp import web

from lfsd.core.audit import Actor
from lfsd.core.ssh_admin import SshKeyAdministration
from lfsd.core.sshkeys import SshKeyInfo
from lfsd.http.admin_api.edge import SSH_KEYS, actor, no_content, path_id, respond, user_name
from lfsd.http.admin_api.models import NewSshKey, body
from lfsd.http.admin_api.render import when


def _keys(request: web.Request) -> SshKeyAdministration:
    return request.app[SSH_KEYS]


def render_key(info: SshKeyInfo) -> dict[str, object]:
    """As ``lfsd ssh key list --json``: never more of the key than its type and fingerprint."""
    return {
        "id": info.id,
        "user": info.user_name,
        "type": info.key_type,
        "fingerprint": info.fingerprint,
        "label": info.label,
        "created_at": when(info.created_at),
        "last_used_at": when(info.last_used_at),
    }


async def _list(request: web.Request, who: Actor, name: str) -> web.Response:
    keys = await _keys(request).list_keys(who, name)
    return respond({"ssh_keys": [render_key(info) for info in keys]})


async def _add(request: web.Request, who: Actor, name: str) -> web.Response:
    new = await body(request, NewSshKey, "SSH key")
    info = await _keys(request).add_key(who, name, new.key, label=new.label)
    response = respond(render_key(info), 201)
    response.headers["Location"] = f"/api/v1/ssh-keys/{info.id}"
    return response


async def list_keys(request: web.Request) -> web.Response:
    return await _list(request, await actor(request), user_name(request))


async def add_key(request: web.Request) -> web.Response:
    return await _add(request, await actor(request), user_name(request))


async def list_own_keys(request: web.Request) -> web.Response:
    who = await actor(request)
    return await _list(request, who, who.name)


async def add_own_key(request: web.Request) -> web.Response:
    who = await actor(request)
    return await _add(request, who, who.name)


async def remove_key(request: web.Request) -> web.Response:
    await _keys(request).remove_key(await actor(request), path_id(request, "SSH key"))
    return no_content()
