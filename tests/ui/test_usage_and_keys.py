"""The repository page's usage (chart from the daily history, counters, quota) and the SSH keys page, driven as a
person would: forms with CSRF tokens, confirmation before removal, and every user-controlled field escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lfsd.config import Settings
from lfsd.core.audit import AuditQuery, Outcome
from lfsd.core.repo import RepoPath
from tests.conftest import AiohttpClient, open_world
from tests.support import World, blob
from tests.ui.browser import Browsers

PASSWORD = "correct horse battery"
XSS = "<script>alert(1)</script>"
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBPmrEFbCEOBfD4vZgB3j6IPfQYl2yvN3JqV2k0W2Zqo alice@laptop"
OTHER = ED25519.replace("IBPm", "IBPn")


def _facts(page: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", page))


async def test_repository_page_charts_the_daily_history_and_shows_the_quota(world: World, browsers: Browsers) -> None:
    await world.repo("acme/game")
    browser = await browsers.signed_in("boss", PASSWORD, admin=True)
    empty = await browser.get("/ui/repo/acme/game")
    assert _facts(empty)["Quota"] == "none"
    assert "0 objects, 0 B" in empty

    await world.push("acme/game", [blob(600, b"a"), blob(300, b"b")], world.auth("root"))
    await world.meta.usage.set_repo_quota(RepoPath.parse("acme/game"), 1000)
    page = await browser.get("/ui/repo/acme/game")
    today = datetime.now(UTC).date()
    first = today - timedelta(days=89)
    # 90 days of history from the usage counters, ending today with what the push left.
    assert f"From {first.isoformat()} to {today.isoformat()}: 2 objects, 900 B" in page
    (points,) = re.findall(r'class="chart-objects" fill="none" points="([^"]*)"', page)
    assert len(points.split()) == 90
    facts = _facts(page)
    assert (facts["Objects"], facts["Stored"], facts["Quota"]) == ("2", "900 B", "1000 B, 90% used")
    assert facts["Last push"] != "—"


async def test_a_server_default_quota_is_shown_as_such(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    world = await open_world(Settings(data_dir=tmp_path / "data", quota_default_bytes=2048), aiohttp_client)
    browsers = Browsers(world)
    try:
        browser = await browsers.signed_in("boss", PASSWORD, admin=True)
        await world.push("acme/game", [blob(512, b"c")], world.auth("root"))
        page = await browser.get("/ui/repo/acme/game")
        assert _facts(page)["Quota"] == "2.0 KiB, 25% used (server default)"
    finally:
        await browsers.close()
        await world.meta.close()


async def test_ssh_keys_are_added_listed_and_removed_after_confirmation(world: World, browsers: Browsers) -> None:
    alice = await browsers.signed_in("alice", PASSWORD)
    page = await alice.get("/ui/ssh-keys")
    assert "No SSH keys." in page and 'aria-current="page">SSH keys' in page
    response = await alice.post("/ui/ssh-keys", {"key": ED25519, "label": XSS})
    added = await response.text()
    assert response.status == 201, added
    assert XSS not in added and "&lt;script&gt;alert(1)&lt;/script&gt;" in added
    (fingerprint,) = set(re.findall(r"<code>(SHA256:[^<]+)</code>", added))
    assert "ssh-ed25519" in added and ED25519.split()[1] not in added
    # The label defaults to the key's comment.
    response = await alice.post("/ui/ssh-keys", {"key": OTHER, "label": ""})
    assert response.status == 201
    listing = await alice.get("/ui/ssh-keys")
    assert fingerprint in listing and "alice@laptop" in listing

    ids = [int(found) for found in re.findall(r'/ui/ssh-keys/(\d+)/remove"', listing)]
    assert len(ids) == 2
    confirm = await alice.get(f"/ui/ssh-keys/{ids[0]}/remove")
    assert "Remove SSH key" in confirm and fingerprint in confirm and XSS not in confirm
    response = await alice.post("/ui/ssh-keys/remove", {"key_id": str(ids[0])})
    assert response.status == 303 and response.headers["Location"] == "/ui/ssh-keys"
    after = await alice.get("/ui/ssh-keys")
    assert fingerprint not in after and re.findall(r'/ui/ssh-keys/(\d+)/remove"', after) == [str(ids[1])]
    entries = await world.meta.audit.entries(AuditQuery(action="sshkey"))
    assert [(e.action, e.outcome, e.actor) for e in reversed(entries)] == [
        ("sshkey.add", Outcome.OK, "alice"),
        ("sshkey.add", Outcome.OK, "alice"),
        ("sshkey.remove", Outcome.OK, "alice"),
    ]


async def test_ssh_key_forms_refuse_bad_input_other_users_and_missing_csrf(world: World, browsers: Browsers) -> None:
    alice = await browsers.signed_in("alice", PASSWORD)
    bob = await browsers.signed_in("bob", PASSWORD)
    await alice.get("/ui/ssh-keys")
    response = await alice.post("/ui/ssh-keys", {"key": ED25519})
    assert response.status == 201
    (key_id,) = re.findall(r'/ui/ssh-keys/(\d+)/remove"', await alice.get("/ui/ssh-keys"))

    await bob.get("/ui/ssh-keys")
    response = await bob.post("/ui/ssh-keys", {"key": ED25519})  # one key, one user
    assert response.status == 409
    for bad in ("not a key", "ssh-ed25519 !!!!", f"{XSS} AAAA"):
        response = await bob.post("/ui/ssh-keys", {"key": bad})
        assert response.status == 400
        assert XSS not in await response.text()
    response = await bob.post("/ui/ssh-keys", {"key": ""})
    assert response.status == 400
    # Another user's key: not shown for confirmation, and its removal refused.
    await bob.get(f"/ui/ssh-keys/{key_id}/remove", status=404)
    await bob.get("/ui/ssh-keys/abc/remove", status=404)
    response = await bob.post("/ui/ssh-keys/remove", {"key_id": key_id})
    assert response.status == 403
    # No CSRF token, or another session's: refused before anything happens.
    response = await alice.client.post("/ui/ssh-keys/remove", data={"key_id": key_id}, allow_redirects=False)
    assert response.status == 403
    response = await alice.post("/ui/ssh-keys", {"key": OTHER}, csrf=bob.csrf)
    assert response.status == 403
    response = await alice.post("/ui/ssh-keys/remove", {"key_id": key_id}, csrf=bob.csrf)
    assert response.status == 403
    listing = await alice.get("/ui/ssh-keys")
    assert re.findall(r'/ui/ssh-keys/(\d+)/remove"', listing) == [key_id]
    assert "No SSH keys." in await bob.get("/ui/ssh-keys")
    # Signed out: sent to the sign-in page.
    response = await browsers.new().client.get("/ui/ssh-keys", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/ui/login")
