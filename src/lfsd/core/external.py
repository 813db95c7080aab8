"""External identities: JWTs from a configured issuer (a Git host fronting lfsd, a CI system's OIDC tokens),
mapped to an lfsd user and one repository permission by rules.

The signature, issuer, audience and times are checked by an adapter (``ClaimsVerifier``, in ``lfsd.oidc``); this
module holds what is pure: the rules, their matching, and the ``Identity`` a token becomes.

Design: a rule names an *existing* lfsd user (say ``ci-bot``) that the token acts as, so locks and the audit log
have an owner and disabling that user stops every token mapped to it at once. The token's permission is exactly
what the rule grants, on the one repository the rule names (``Identity.repo_scope``), whatever that user's own
grants or admin flag: a CI job of ``acme/game`` can never touch ``acme/other``. A token that verifies but matches
no rule is a caller with no grants (public repositories readable, private ones 404), like a token with no access.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final, Protocol

from lfsd.core.auth import Identity, Permission
from lfsd.core.errors import InvalidRepoPath, Unauthorized
from lfsd.core.names import InvalidUserName, UserName
from lfsd.core.repo import RepoPath

Claims = Mapping[str, object]

_FIELD: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
_GLOB_CHARACTERS: Final = frozenset("*?[")
MAX_RULES: Final = 1000


def looks_like_jwt(value: str) -> bool:
    """Three non-empty dotted parts (a JWS compact serialization); personal access tokens start with ``lfsd_``."""
    parts = value.split(".")
    return len(parts) == 3 and all(parts) and not value.startswith("lfsd_")


class InvalidRules(ValueError):
    """The rules file is not valid; the message says where."""


@dataclass(frozen=True, slots=True)
class Rule:
    """If every claim in ``match`` has a matching value (exact, or a glob when it holds ``*``, ``?`` or ``[``),
    the token acts as ``user`` with ``permission`` on ``repository``, a template of ``{claim}`` fields."""

    match: Mapping[str, str]
    repository: str
    permission: Permission
    user: UserName

    def matches(self, claims: Claims) -> bool:
        for name, pattern in self.match.items():
            value = claims.get(name)
            if not isinstance(value, str):
                return False
            if _GLOB_CHARACTERS.isdisjoint(pattern):
                if value != pattern:
                    return False
            elif not fnmatchcase(value, pattern):
                return False
        return True

    def repository_for(self, claims: Claims) -> RepoPath | None:
        """The repository named by the template filled from ``claims``; None when a field is missing or the result
        is not a valid repository path."""
        missing = False

        def fill(found: re.Match[str]) -> str:
            nonlocal missing
            value = claims.get(found.group(1))
            if not isinstance(value, str):
                missing = True
                return ""
            return value

        path = _FIELD.sub(fill, self.repository)
        if missing:
            return None
        try:
            return RepoPath.parse(path)
        except InvalidRepoPath:
            return None


@dataclass(frozen=True, slots=True)
class ExternalGrant:
    user: UserName
    repository: RepoPath
    permission: Permission
    rule: int  # the rule's position in the file, from 1, for the log


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]

    def grant_for(self, claims: Claims) -> ExternalGrant | None:
        """The first matching rule whose repository template fills to a valid path, else None."""
        for position, rule in enumerate(self.rules, start=1):
            if rule.matches(claims):
                repository = rule.repository_for(claims)
                if repository is not None:
                    return ExternalGrant(rule.user, repository, rule.permission, position)
        return None

    @classmethod
    def parse(cls, document: object) -> RuleSet:
        """Rules from a parsed TOML or JSON document: ``{"rule": [{"match": {...}, "repository": "...",
        "permission": "read"|"write", "user": "..."}, ...]}``."""
        if not isinstance(document, Mapping) or set(document) - {"rule"}:
            raise InvalidRules("the rules document holds only a list named 'rule'")
        entries = document.get("rule", [])
        if not isinstance(entries, list) or len(entries) > MAX_RULES:
            raise InvalidRules(f"'rule' must be a list of at most {MAX_RULES} tables")
        return cls(tuple(_rule(entry, position) for position, entry in enumerate(entries, start=1)))


def _rule(entry: object, position: int) -> Rule:
    where = f"rule {position}"
    if not isinstance(entry, Mapping):
        raise InvalidRules(f"{where}: must be a table")
    unknown = set(entry) - {"match", "repository", "permission", "user"}
    if unknown:
        raise InvalidRules(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    match = entry.get("match", {})
    if not isinstance(match, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in match.items()
    ):
        raise InvalidRules(f"{where}: 'match' must map claim names to strings")
    repository = entry.get("repository")
    if not isinstance(repository, str):
        raise InvalidRules(f"{where}: 'repository' is required (a path, or a template such as '{{repository}}')")
    leftover = _FIELD.sub("x", repository)
    if "{" in leftover or "}" in leftover:
        raise InvalidRules(f"{where}: 'repository' may hold only {{claim}} fields")
    if _FIELD.search(repository) is None:
        try:
            RepoPath.parse(repository)
        except InvalidRepoPath:
            raise InvalidRules(f"{where}: {repository!r} is not a valid repository path") from None
    permission = entry.get("permission")
    if permission not in ("read", "write"):
        raise InvalidRules(f"{where}: 'permission' must be 'read' or 'write'")
    user = entry.get("user")
    try:
        name = UserName.parse(user)
    except InvalidUserName:
        raise InvalidRules(f"{where}: 'user' must name an lfsd user (the token acts as that user)") from None
    return Rule(dict(match), repository, Permission.parse(permission), name)


class ClaimsVerifier(Protocol):
    def verify(self, token: str) -> Claims:
        """The claims of a token whose signature, issuer, audience and times hold; else raise ``Unauthorized``."""


class ActingUser(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def disabled(self) -> bool: ...


class ActingUsers(Protocol):
    async def find(self, name: str) -> ActingUser | None:
        """The user ``name`` unless deleted."""


class ExternalLogin:
    def __init__(self, verifier: ClaimsVerifier, rules: RuleSet, users: ActingUsers) -> None:
        self._verifier = verifier
        self._rules = rules
        self._users = users

    async def authenticate(self, token: str) -> Identity:
        claims = self._verifier.verify(token)
        expires = claims.get("exp")
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise Unauthorized("invalid token")
        grant = self._rules.grant_for(claims)
        if grant is None:
            subject = claims.get("sub")
            name = f"jwt:{subject}" if isinstance(subject, str) else "jwt"
            # No rule: a caller with no grants anywhere (user id 0 matches no grant and owns nothing).
            return Identity(user_id=0, name=name[:200], is_admin=False, ceiling=Permission.READ, valid_until=expires)
        user = await self._users.find(grant.user)
        if user is None or user.disabled:
            raise Unauthorized("the user this token acts as is disabled or does not exist")
        return Identity(
            user_id=user.id,
            name=user.name,
            is_admin=False,
            ceiling=grant.permission,
            repo_scope=grant.repository,
            scope_grant=grant.permission,
            valid_until=expires,
        )
