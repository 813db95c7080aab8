"""The objects page's "by" column: who first linked each object to the repository, carried from the batch (a
deduplicated link) and the PUT of the upload through the index, on every database."""

from __future__ import annotations

import re

from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath
from tests.support import World, blob
from tests.ui.browser import Browsers

PASSWORD = "correct horse battery"
_ROW = re.compile(r'<code class="oid">([0-9a-f]{64})</code></td><td[^>]*>[^<]*</td><td>[^<]*</td><td>([^<]*)</td>')


def _by(page: str) -> dict[str, str]:
    return dict(_ROW.findall(page))


async def test_the_first_uploader_of_each_object_is_shown(world: World, browsers: Browsers) -> None:
    browser = await browsers.signed_in("boss", PASSWORD, admin=True)
    await world.user("alice")
    await world.user("bob")
    await world.repo("acme/game", grants={"alice": "write", "bob": "write"})
    await world.repo("acme/tools", grants={"bob": "write"})
    first, second = blob(100, b"1"), blob(200, b"2")
    await world.push("acme/game", [first], world.auth("alice"))  # batch, then PUT
    await world.push("acme/game", [first, second], world.auth("bob"))  # first is held already: alice stays
    await world.push("acme/tools", [first], world.auth("bob"))  # a deduplicated link, by the batch alone
    game = await world.meta.repos.find(RepoPath.parse("acme/game"))
    assert game is not None
    await world.meta.objects.link(game.id, {Oid.parse("d" * 64): 5})  # not through a user: nobody

    page = await browser.get("/ui/repo/acme/game")
    assert '<th scope="col">By</th>' in page
    assert _by(page) == {first.oid: "alice", second.oid: "bob", "d" * 64: "—"}
    assert _by(await browser.get("/ui/repo/acme/tools")) == {first.oid: "bob"}
    # A deleted user's row stays, renamed as such (as their locks show it): their objects still say who it was.
    bob = await world.meta.users.require("bob")
    await world.meta.users.delete(bob.id)
    assert _by(await browser.get("/ui/repo/acme/game"))[second.oid] == f"bob (deleted #{bob.id})"
