"""The admin API's route table: each operation once, with what the OpenAPI document says about it. The router
and the document are both built from this table, so they cannot drift apart."""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BASE: Final = "/api/v1"
# How each path parameter is matched. A repository path holds slashes; a user name none.
PATTERNS: Final = {"repo": r"[^{}]+?", "name": r"[^{}/]+", "id": r"[^{}/]+", "owner": r"[^{}/]+"}
PAGED: Final = ("cursor", "limit")


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    template: str  # under BASE, OpenAPI style: /repos/{repo}
    handler: str  # module.function under lfsd.http.admin_api, imported on the first request (see ``handler``)
    summary: str
    status: int = 200
    request: str | None = None  # a model of models.py
    response: str | None = None  # a schema of the document's components, for the success status
    query: tuple[str, ...] = ()
    access: str = "admin"  # admin: an admin-scope token of a server admin; self: any user; none: anyone
    action: str = ""  # admin operations: the audit action of a refusal before the request is read

    @property
    def operation_id(self) -> str:
        return self.handler.rpartition(".")[2]

    @property
    def route(self) -> str:
        return BASE + re.sub(r"\{(\w+)\}", lambda m: "{%s:%s}" % (m[1], PATTERNS[m[1]]), self.template)  # noqa: UP031


# Sub-resources (``/-/…``) come before the bare repository path, which would otherwise match them first.
OPERATIONS: Final = (
    Operation(
        "GET", "/users", "users.list_users", "List users, by name", response="UserList", query=PAGED, action="user.list"
    ),
    Operation("POST", "/users", "users.add_user", "Add a user", 201, "NewUser", "User", action="user.add"),
    Operation("GET", "/users/{name}", "users.show_user", "Show a user", response="User", action="user.show"),
    Operation(
        "PATCH",
        "/users/{name}",
        "users.change_user",
        "Disable/enable, admin flag, password",
        200,
        "UserChange",
        "User",
        action="user.change",
    ),
    Operation(
        "DELETE", "/users/{name}", "users.delete_user", "Delete a user (their locks stay)", 204, action="user.delete"
    ),
    Operation(
        "GET",
        "/users/{name}/grants",
        "users.user_grants",
        "A user's grants",
        response="GrantList",
        query=PAGED,
        action="user.grants",
    ),
    Operation(
        "GET",
        "/users/{name}/tokens",
        "tokens.list_tokens",
        "A user's active tokens",
        response="TokenList",
        query=PAGED,
        access="self",
    ),
    Operation(
        "POST",
        "/users/{name}/tokens",
        "tokens.create_token",
        "Create a token",
        201,
        "NewToken",
        "CreatedToken",
        access="self",
    ),
    Operation(
        "DELETE",
        "/users/{name}/tokens",
        "tokens.revoke_all_tokens",
        "Revoke all of a user's tokens",
        response="Revoked",
        access="self",
    ),
    Operation(
        "DELETE", "/tokens/{id}", "tokens.revoke_token", "Revoke a token (own, or any as admin)", 204, access="self"
    ),
    Operation(
        "GET", "/user/tokens", "tokens.list_own_tokens", "Your tokens", response="TokenList", query=PAGED, access="self"
    ),
    Operation(
        "POST",
        "/user/tokens",
        "tokens.create_own_token",
        "Create a token for yourself",
        201,
        "NewToken",
        "CreatedToken",
        access="self",
    ),
    Operation(
        "DELETE",
        "/user/tokens",
        "tokens.revoke_own_tokens",
        "Revoke all your tokens",
        response="Revoked",
        access="self",
    ),
    Operation(
        "PUT",
        "/user/password",
        "users.change_own_password",
        "Change your password",
        204,
        "PasswordChange",
        access="self",
    ),
    Operation(
        "GET",
        "/repos",
        "repos.list_repos",
        "List repositories, by path",
        response="RepoList",
        query=PAGED,
        action="repo.list",
    ),
    Operation(
        "POST", "/repos", "repos.create_repo", "Create a repository", 201, "NewRepo", "Repo", action="repo.create"
    ),
    Operation(
        "GET",
        "/repos/{repo}/-/grants",
        "repos.repo_grants",
        "A repository's grants",
        response="GrantList",
        query=PAGED,
        action="repo.grants",
    ),
    Operation(
        "PUT",
        "/repos/{repo}/-/grants/{name}",
        "repos.set_grant",
        "Grant or change",
        200,
        "GrantChange",
        "Grant",
        action="repo.grant",
    ),
    Operation(
        "DELETE", "/repos/{repo}/-/grants/{name}", "repos.revoke_grant", "Revoke a grant", 204, action="repo.revoke"
    ),
    Operation(
        "GET",
        "/repos/{repo}/-/locks",
        "repos.repo_locks",
        "A repository's locks",
        response="LockList",
        query=PAGED,
        action="lock.list",
    ),
    Operation(
        "DELETE",
        "/repos/{repo}/-/locks/{id}",
        "repos.force_unlock",
        "Force a lock open",
        204,
        action="lock.force_unlock",
    ),
    Operation(
        "GET",
        "/repos/{repo}/-/usage",
        "usage.repo_usage",
        "A repository's usage and quota; with ?days=N its daily history",
        response="Usage",
        query=("days",),
        action="usage.show",
    ),
    Operation(
        "PUT",
        "/repos/{repo}/-/quota",
        "usage.set_repo_quota",
        "Set a repository's quota",
        200,
        "QuotaChange",
        "Usage",
        action="quota.set",
    ),
    Operation(
        "DELETE",
        "/repos/{repo}/-/quota",
        "usage.clear_repo_quota",
        "Clear a repository's quota",
        204,
        action="quota.set",
    ),
    Operation("GET", "/repos/{repo}", "repos.show_repo", "Show a repository", response="Repo", action="repo.show"),
    Operation(
        "PATCH",
        "/repos/{repo}",
        "repos.change_repo",
        "Rename, public on/off, locking on/off",
        200,
        "RepoChange",
        "Repo",
        action="repo.change",
    ),
    Operation("DELETE", "/repos/{repo}", "repos.delete_repo", "Delete a repository", 204, action="repo.delete"),
    Operation(
        "GET",
        "/audit",
        "audit.list_audit",
        "The audit log, newest first",
        response="AuditList",
        query=(*PAGED, "actor", "action", "since"),
        action="audit.list",
    ),
    Operation(
        "GET",
        "/owners/{owner}/usage",
        "usage.owner_usage",
        "An owner's usage (all their repositories) and quota",
        response="Usage",
        action="usage.show",
    ),
    Operation(
        "PUT",
        "/owners/{owner}/quota",
        "usage.set_owner_quota",
        "Set an owner's quota",
        200,
        "QuotaChange",
        "Usage",
        action="quota.set",
    ),
    Operation(
        "DELETE", "/owners/{owner}/quota", "usage.clear_owner_quota", "Clear an owner's quota", 204, action="quota.set"
    ),
    Operation(
        "GET", "/users/{name}/ssh-keys", "ssh_keys.list_keys", "A user's SSH keys", response="SshKeyList", access="self"
    ),
    Operation(
        "POST",
        "/users/{name}/ssh-keys",
        "ssh_keys.add_key",
        "Add an SSH key to a user",
        201,
        "NewSshKey",
        "SshKey",
        access="self",
    ),
    Operation("GET", "/user/ssh-keys", "ssh_keys.list_own_keys", "Your SSH keys", response="SshKeyList", access="self"),
    Operation(
        "POST",
        "/user/ssh-keys",
        "ssh_keys.add_own_key",
        "Add an SSH key for yourself",
        201,
        "NewSshKey",
        "SshKey",
        access="self",
    ),
    Operation(
        "DELETE",
        "/ssh-keys/{id}",
        "ssh_keys.remove_key",
        "Remove an SSH key (own, or any as admin)",
        204,
        access="self",
    ),
)

OPENAPI: Final = Operation(
    "GET", "/openapi.json", "openapi.openapi_document", "This document", response=None, access="none"
)


def handler(op: Operation) -> Handler:
    """The operation's handler, its module imported on the first request rather than at start-up: the handler modules
    parse bodies with pydantic (``models``), which an idle server does not load (issue 17, 9 MiB). The import runs
    once, on the event loop, as the web UI's first page imports Jinja2."""
    module_name, _, function = op.handler.rpartition(".")
    loaded: Handler | None = None

    async def call(request: web.Request) -> web.StreamResponse:
        nonlocal loaded
        if loaded is None:
            loaded = getattr(importlib.import_module(f"lfsd.http.admin_api.{module_name}"), function)
        return await loaded(request)

    return call
