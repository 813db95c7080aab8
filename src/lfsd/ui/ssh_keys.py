"""The person's own SSH keys: add (with a label), list (type, fingerprint, label, added, last used), and remove after
a confirmation page; through the use cases of ``core/ssh_admin.py``, which check and audit each change."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lfsd.core.errors import BadRequest, NotFound
from lfsd.core.ssh_admin import SshKeyAdministration
from lfsd.core.sshkeys import MAX_KEY_BASE64_LENGTH, MAX_KEY_LABEL_LENGTH
from lfsd.ui.forms import actor, form, see_other, signed_in, text
from lfsd.ui.keys import UI
from lfsd.ui.security import PREFIX, page, render

MAX_KEY_LINE = MAX_KEY_BASE64_LENGTH + 1024  # the type and a comment around the key data
PAGE = f"{PREFIX}/ssh-keys"


def _keys(request: web.Request) -> SshKeyAdministration:
    keys = request.config_dict[UI].ssh_keys
    if keys is None:
        raise NotFound("SSH keys are not available on this server")
    return keys


def _key_id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise NotFound("SSH key not found")
    return int(value)


async def _context(request: web.Request) -> dict[str, Any]:
    session = signed_in(request)
    return {"keys": await _keys(request).list_keys(actor(request, session), session.identity.name)}


@page("ssh_keys.html")
async def keys_page(request: web.Request) -> dict[str, Any]:
    return await _context(request)


async def add_key(request: web.Request) -> web.StreamResponse:
    session = signed_in(request)
    data = await form(request)
    line = text(data, "key", limit=MAX_KEY_LINE)
    label = text(data, "label", required=False, limit=MAX_KEY_LABEL_LENGTH).strip() or None
    added = await _keys(request).add_key(actor(request, session), session.identity.name, line, label=label)
    return render(request, "ssh_keys.html", {**await _context(request), "added": added}, status=201)


@page("confirm_ssh_key.html")
async def confirm_remove(request: web.Request) -> dict[str, Any]:
    key_id = _key_id(request.match_info["key_id"])
    shown = [key for key in (await _context(request))["keys"] if key.id == key_id]
    if not shown:
        raise NotFound("SSH key not found")
    return {"key": shown[0]}


async def remove_key(request: web.Request) -> web.StreamResponse:
    session = signed_in(request)
    data = await form(request)
    key_id = text(data, "key_id", limit=10)
    if not key_id.isdigit():
        raise BadRequest("key_id is a number")
    await _keys(request).remove_key(actor(request, session), int(key_id))
    see_other(PAGE)
