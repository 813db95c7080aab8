"""The pure part of external identities: rules, their matching and templates, and the Identity a token becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from lfsd.core.auth import Identity, Permission, Repo, effective_permission
from lfsd.core.errors import Unauthorized
from lfsd.core.external import (
    ActingUser,
    Claims,
    ExternalLogin,
    InvalidRules,
    RuleSet,
    looks_like_jwt,
)
from lfsd.core.repo import RepoPath

RULES: dict[str, Any] = {
    "rule": [
        {
            "match": {"repository": "acme/*", "ref": "refs/heads/main"},
            "repository": "{repository}",
            "permission": "write",
            "user": "ci-bot",
        },
        {"match": {"repository": "acme/game"}, "repository": "acme/game", "permission": "read", "user": "ci-bot"},
        {
            "match": {"project_path": "tools/*", "ref_type": "branch"},
            "repository": "mirror/{project_path}",
            "permission": "read",
            "user": "gitlab",
        },
    ]
}


def test_first_matching_rule_wins_and_fills_its_template() -> None:
    rules = RuleSet.parse(RULES)
    grant = rules.grant_for({"repository": "acme/game", "ref": "refs/heads/main"})
    assert grant is not None
    assert (grant.user, grant.repository, grant.permission, grant.rule) == ("ci-bot", "acme/game", Permission.WRITE, 1)
    feature = rules.grant_for({"repository": "acme/game", "ref": "refs/heads/feature"})
    assert feature is not None and (feature.permission, feature.rule) == (Permission.READ, 2)
    other = rules.grant_for({"repository": "acme/tools", "ref": "refs/heads/main"})
    assert other is not None and other.repository == "acme/tools"


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"repository": "evil/game", "ref": "refs/heads/main"},
        {"repository": "acme/other", "ref": "refs/heads/feature"},
        {"repository": ["acme/game"], "ref": "refs/heads/main"},  # not a string
        {"project_path": "tools/a", "ref_type": "tag"},
        {"project_path": "tools/../x", "ref_type": "branch"},  # the filled template is not a valid path
        {"project_path": "tools/a/b/c/d/e/f/g", "ref_type": "branch"},  # too many segments
    ],
)
def test_claims_that_match_no_rule(claims: Claims) -> None:
    assert RuleSet.parse(RULES).grant_for(claims) is None


def test_globs_and_exact_values() -> None:
    rules = RuleSet.parse(
        {
            "rule": [
                {"match": {"ref": "refs/heads/release-[0-9]*"}, "repository": "a/b", "permission": "read", "user": "u"}
            ]
        }
    )
    assert rules.grant_for({"ref": "refs/heads/release-2"}) is not None
    assert rules.grant_for({"ref": "refs/heads/release-x"}) is None
    assert rules.grant_for({"ref": "REFS/HEADS/RELEASE-2"}) is None  # case matters


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "only a list named 'rule'"),
        ({"rules": []}, "only a list named 'rule'"),
        ({"rule": [1]}, "rule 1: must be a table"),
        ({"rule": [{"repository": "a/b", "permission": "read", "user": "u", "extra": 1}]}, "unknown keys extra"),
        ({"rule": [{"repository": "a/b", "permission": "admin", "user": "u"}]}, "'read' or 'write'"),
        ({"rule": [{"repository": "a/b", "permission": "read", "user": "bad:name"}]}, "'user'"),
        ({"rule": [{"repository": "a/b", "permission": "read"}]}, "'user'"),
        ({"rule": [{"permission": "read", "user": "u"}]}, "'repository' is required"),
        ({"rule": [{"repository": "../b", "permission": "read", "user": "u"}]}, "not a valid repository path"),
        ({"rule": [{"repository": "{a.__class__}/b", "permission": "read", "user": "u"}]}, "only {claim} fields"),
        ({"rule": [{"match": {"a": 1}, "repository": "a/b", "permission": "read", "user": "u"}]}, "'match'"),
    ],
)
def test_invalid_rules_are_refused_with_where(document: object, message: str) -> None:
    with pytest.raises(InvalidRules, match=message.replace("{", "\\{").replace("}", "\\}").replace(".", "\\.")):
        RuleSet.parse(document)


def test_jwt_shape() -> None:
    assert looks_like_jwt("aaa.bbb.ccc")
    assert not looks_like_jwt("lfsd_" + "a" * 40)
    assert not looks_like_jwt("a.b")
    assert not looks_like_jwt("a..c")


@dataclass(frozen=True)
class FakeUser:
    id: int
    name: str
    disabled: bool = False


class FakeUsers:
    def __init__(self, *users: FakeUser) -> None:
        self._users = {user.name: user for user in users}

    async def find(self, name: str) -> ActingUser | None:
        return self._users.get(name)


class FakeVerifier:
    def __init__(self, claims: dict[str, object]) -> None:
        self.claims = claims

    def verify(self, token: str) -> Claims:
        if token != "good.token.here":
            raise Unauthorized("invalid token")
        return self.claims


CLAIMS = {"repository": "acme/game", "ref": "refs/heads/main", "exp": 2_000_000_000, "sub": "repo:acme/game"}


async def test_a_matching_token_acts_as_the_rule_user_on_one_repository() -> None:
    login = ExternalLogin(FakeVerifier(CLAIMS), RuleSet.parse(RULES), FakeUsers(FakeUser(5, "ci-bot")))
    identity = await login.authenticate("good.token.here")
    assert identity == Identity(
        user_id=5,
        name="ci-bot",
        is_admin=False,
        ceiling=Permission.WRITE,
        repo_scope=RepoPath("acme/game"),
        scope_grant=Permission.WRITE,
        valid_until=2_000_000_000,
    )
    game = Repo(1, RepoPath("acme/game"), is_public=False)
    other = Repo(2, RepoPath("acme/other"), is_public=True)
    assert effective_permission(identity, game, Permission.NONE) is Permission.WRITE
    assert effective_permission(identity, game, Permission.ADMIN) is Permission.WRITE  # the user's grant never adds
    assert effective_permission(identity, other, Permission.ADMIN) is Permission.NONE


async def test_a_disabled_or_missing_acting_user_refuses_the_token() -> None:
    rules = RuleSet.parse(RULES)
    with pytest.raises(Unauthorized):
        await ExternalLogin(FakeVerifier(CLAIMS), rules, FakeUsers(FakeUser(5, "ci-bot", True))).authenticate(
            "good.token.here"
        )
    with pytest.raises(Unauthorized):
        await ExternalLogin(FakeVerifier(CLAIMS), rules, FakeUsers()).authenticate("good.token.here")


async def test_no_rule_means_no_grants() -> None:
    claims = {**CLAIMS, "repository": "evil/x"}
    identity = await ExternalLogin(FakeVerifier(claims), RuleSet.parse(RULES), FakeUsers()).authenticate(
        "good.token.here"
    )
    assert (identity.user_id, identity.name, identity.is_admin, identity.repo_scope) == (
        0,
        "jwt:repo:acme/game",
        False,
        None,
    )
    public = Repo(1, RepoPath("acme/open"), is_public=True)
    private = Repo(2, RepoPath("acme/game"), is_public=False)
    assert effective_permission(identity, public, Permission.NONE) is Permission.READ
    assert effective_permission(identity, private, Permission.NONE) is Permission.NONE


async def test_a_token_without_exp_is_refused() -> None:
    claims = {key: value for key, value in CLAIMS.items() if key != "exp"}
    with pytest.raises(Unauthorized):
        await ExternalLogin(FakeVerifier(claims), RuleSet.parse(RULES), FakeUsers()).authenticate("good.token.here")
