"""External identities over HTTP: JWTs as Bearer credentials, verified and mapped by rules (core/external.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lfsd.config import Settings
from tests.conftest import AiohttpClient, open_world
from tests.jwt_support import (
    AUDIENCE,
    ISSUER,
    RULES,
    SigningKey,
    bearer,
    hmac_with_public_key,
    unsigned,
    write_jwks,
)
from tests.support import LFS_HEADERS, World, blob, lfs_error


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.rsa()


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey.rsa("rsa-2")


def _settings(tmp_path: Path, database_url: str | None = None, **oidc: Any) -> Settings:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        listen="127.0.0.1:0",
        fsync=False,
        buffer_size=64 * 1024,
        link_standing_ttl=0.0,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_rules=rules,
        **oidc,
    )


async def _world(settings: Settings, aiohttp_client: AiohttpClient) -> World:
    world = await open_world(settings, aiohttp_client)
    await world.meta.users.add("ci-bot", is_admin=False, password=None)
    await world.repo("acme/other")
    await world.repo("tools/build")
    return world


@pytest.fixture
async def pem_world(tmp_path: Path, key: SigningKey, aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(key.public_pem())
    world = await _world(_settings(tmp_path, oidc_public_key=pem), aiohttp_client)
    yield world
    await world.meta.close()


@pytest.fixture
async def jwks_world(
    tmp_path: Path, key: SigningKey, other_key: SigningKey, aiohttp_client: AiohttpClient
) -> AsyncIterator[World]:
    jwks = write_jwks(tmp_path / "jwks.json", key, other_key)
    world = await _world(_settings(tmp_path, oidc_jwks_file=jwks, oidc_algorithms="RS256"), aiohttp_client)
    yield world
    await world.meta.close()


@pytest.fixture
async def any_db_world(
    tmp_path: Path, database_url: str | None, key: SigningKey, aiohttp_client: AiohttpClient
) -> AsyncIterator[World]:
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(key.public_pem())
    world = await _world(_settings(tmp_path, database_url, oidc_public_key=pem), aiohttp_client)
    yield world
    await world.meta.close()


async def test_objects_outside_the_rule_repository_are_never_linked_on_every_database(
    any_db_world: World, key: SigningKey
) -> None:
    """ci-bot may read acme/other by its own grant, but the JWT's scope is acme/game: an object held only by
    acme/other must be uploaded, not linked (which would prove it exists and hand it over)."""
    await any_db_world.repo("acme/shared", grants={"ci-bot": "write"})
    held = blob(120)
    await any_db_world.push("acme/shared", [held], any_db_world.auth("root"))
    auth = bearer(key.token())
    (obj,) = await any_db_world.batch_ok("acme/game", "upload", [held], auth)
    assert "upload" in obj["actions"]
    await any_db_world.push("acme/game", [held], auth)
    assert await any_db_world.fetch("acme/game", held, auth) == held.data
    await lfs_error(await any_db_world.batch("acme/shared", "download", [held.spec()], auth), 404)


async def test_a_write_rule_pushes_and_fetches(pem_world: World, key: SigningKey) -> None:
    item = blob(300)
    auth = bearer(key.token())
    await pem_world.push("acme/game", [item], auth)
    assert await pem_world.fetch("acme/game", item, auth) == item.data


async def test_a_read_rule_fetches_but_may_not_upload(pem_world: World, key: SigningKey) -> None:
    item = blob(200)
    await pem_world.push("acme/game", [item], pem_world.auth("root"))
    reader = bearer(key.token(ref="refs/heads/feature"))  # the second rule: read only
    assert await pem_world.fetch("acme/game", item, reader) == item.data
    response = await pem_world.batch("acme/game", "upload", [blob(10).spec()], reader)
    await lfs_error(response, 403)


async def test_the_grant_holds_on_the_rule_repository_only(pem_world: World, key: SigningKey) -> None:
    auth = bearer(key.token())
    await lfs_error(await pem_world.batch("acme/other", "download", [blob(10).spec()], auth), 404)
    await lfs_error(await pem_world.batch("acme/other", "upload", [blob(10).spec()], auth), 404)


async def test_a_template_rule_names_the_repository_from_a_claim(pem_world: World, key: SigningKey) -> None:
    gitlab = key.token(repository=None, ref="main", project_path="tools/build", ref_type="branch")
    await pem_world.push("tools/build", [blob(64)], bearer(gitlab))
    await lfs_error(await pem_world.batch("acme/game", "download", [blob(10).spec()], bearer(gitlab)), 404)
    tag = key.token(repository=None, ref="v1", project_path="tools/build", ref_type="tag")
    await lfs_error(await pem_world.batch("tools/build", "upload", [blob(10).spec()], bearer(tag)), 404)


async def test_a_token_matching_no_rule_has_no_access(pem_world: World, key: SigningKey) -> None:
    stranger = bearer(key.token(repository="evil/repo", sub="repo:evil/repo:ref:refs/heads/main"))
    await lfs_error(await pem_world.batch("acme/game", "download", [blob(10).spec()], stranger), 404)
    # Like a token with no grants: a public repository is readable, never writable.
    await pem_world.repo("acme/open", public=True)
    response = await pem_world.batch("acme/open", "download", [blob(10).spec()], stranger)
    assert response.status == 200
    await lfs_error(await pem_world.batch("acme/open", "upload", [blob(10).spec()], stranger), 403)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"aud": "https://elsewhere.test"}, "invalid token"),
        ({"iss": "https://evil.test"}, "invalid token"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not yet valid"),
        ({"iat": int(time.time()) + 3600}, "not yet valid"),
        ({"exp": None}, "invalid token"),
    ],
)
async def test_claims_that_do_not_hold_are_refused(
    pem_world: World, key: SigningKey, claims: dict[str, Any], message: str
) -> None:
    response = await pem_world.batch("acme/game", "download", [blob(10).spec()], bearer(key.token(**claims)))
    assert message in (await lfs_error(response, 401))["message"]


async def test_forged_tokens_are_refused(pem_world: World, key: SigningKey, other_key: SigningKey) -> None:
    good = key.token()
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": int(time.time()), "exp": int(time.time()) + 600}
    claims |= {"repository": "acme/game", "ref": "refs/heads/main"}
    head, _body, signature = good.split(".")
    forgeries = {
        "other key": other_key.token(header={"kid": key.kid}),
        "alg none": unsigned(claims),
        "alg none, signature kept": unsigned(claims) + signature,
        "RS256 -> HS256 with the public key": hmac_with_public_key(key, claims),
        "changed claims": head + "." + unsigned({**claims, "repository": "acme/x"}).split(".")[1] + "." + signature,
        "not base64": "a.b.c",
        "ES256 claimed over an RSA key": SigningKey.ec(key.kid).token(),
    }
    for name, token in forgeries.items():
        response = await pem_world.batch("acme/game", "download", [blob(10).spec()], bearer(token))
        assert response.status == 401, name
        await lfs_error(response, 401)


async def test_jwks_picks_the_key_by_kid(jwks_world: World, key: SigningKey, other_key: SigningKey) -> None:
    for signer in (key, other_key):
        response = await jwks_world.batch("acme/game", "download", [blob(10).spec()], bearer(signer.token()))
        assert response.status == 200, await response.text()
    unknown = SigningKey(key.private, "rsa-9", "RS256").token()
    body = await lfs_error(await jwks_world.batch("acme/game", "download", [blob(10).spec()], bearer(unknown)), 401)
    assert "key id" in body["message"]
    # A key of the set, but the token's kid names the other one.
    swapped = SigningKey(key.private, other_key.kid, "RS256").token()
    await lfs_error(await jwks_world.batch("acme/game", "download", [blob(10).spec()], bearer(swapped)), 401)


async def test_the_acting_user_disabled_stops_tokens_and_their_links(pem_world: World, key: SigningKey) -> None:
    auth = bearer(key.token())
    item = blob(100)
    (obj,) = await pem_world.batch_ok("acme/game", "upload", [item], auth)
    action = obj["actions"]["upload"]
    await pem_world.meta.users.set_disabled("ci-bot", True)
    await lfs_error(await pem_world.batch("acme/game", "download", [item.spec()], auth), 401)
    put = await pem_world.client.session.put(action["href"], data=item.data, headers=action["header"])
    await lfs_error(put, 401)


async def test_links_do_not_outlive_the_token(pem_world: World, key: SigningKey) -> None:
    item = blob(100)
    short = bearer(key.token(exp=int(time.time()) + 40))
    (obj,) = await pem_world.batch_ok("acme/game", "upload", [item], short)
    assert obj["actions"]["upload"]["expires_in"] <= 40
    long = bearer(key.token(exp=int(time.time()) + 7200))
    (obj,) = await pem_world.batch_ok("acme/game", "upload", [item], long)
    assert obj["actions"]["upload"]["expires_in"] == 1800


async def test_a_read_rule_link_cannot_be_replayed_as_a_write(pem_world: World, key: SigningKey) -> None:
    """The link carries the rule's grant; the acting user's own grants (here: write on acme/game) never add to it."""
    await pem_world.repo("acme/mine", grants={"ci-bot": "write"})
    item = blob(100)
    await pem_world.push("acme/game", [item], pem_world.auth("root"))
    reader = bearer(key.token(ref="refs/heads/feature"))
    (obj,) = await pem_world.batch_ok("acme/game", "download", [item], reader)
    response = await pem_world.client.session.get(
        obj["actions"]["download"]["href"], headers=obj["actions"]["download"]["header"]
    )
    assert response.status == 200
    await lfs_error(await pem_world.batch("acme/mine", "upload", [blob(10).spec()], reader), 404)


async def test_locks_are_owned_by_the_acting_user_and_never_forced(pem_world: World, key: SigningKey) -> None:
    auth = {**LFS_HEADERS, **bearer(key.token())}
    base = "/acme/game.git/info/lfs/locks"
    response = await pem_world.client.post(base, json={"path": "art/hero.psd"}, headers=auth)
    assert response.status == 201, await response.text()
    lock = (await response.json(content_type=None))["lock"]
    assert lock["owner"] == {"name": "ci-bot"}
    theirs = await pem_world.client.post(
        base, json={"path": "art/root.psd"}, headers={**LFS_HEADERS, **pem_world.auth("root")}
    )
    other = (await theirs.json(content_type=None))["lock"]
    forced = await pem_world.client.post(f"{base}/{other['id']}/unlock", json={"force": True}, headers=auth)
    await lfs_error(forced, 403)
    reader = {**LFS_HEADERS, **bearer(key.token(ref="refs/heads/feature"))}
    await lfs_error(await pem_world.client.post(base, json={"path": "a.psd"}, headers=reader), 403)


async def test_git_smart_http_follows_the_rule(pem_world: World, key: SigningKey) -> None:
    refs = "/acme/game.git/info/refs"
    reader = bearer(key.token(ref="refs/heads/feature"))
    response = await pem_world.client.get(refs, params={"service": "git-upload-pack"}, headers=reader)
    assert response.status == 200
    push = await pem_world.client.get(refs, params={"service": "git-receive-pack"}, headers=reader)
    assert push.status == 403  # Git's errors are plain text
    writer = bearer(key.token())
    push = await pem_world.client.get(refs, params={"service": "git-receive-pack"}, headers=writer)
    assert push.status == 200
    other = await pem_world.client.get(
        "/acme/other.git/info/refs", params={"service": "git-upload-pack"}, headers=writer
    )
    assert other.status == 404


async def test_a_server_without_an_issuer_refuses_jwts(world: World, key: SigningKey) -> None:
    await world.repo("acme/game")
    response = await world.batch("acme/game", "download", [blob(10).spec()], bearer(key.token()))
    await lfs_error(response, 401)
