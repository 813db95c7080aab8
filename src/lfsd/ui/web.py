"""The UI's sub-application: templates (autoescaped), hashed static files, its middleware, and its routes."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from lfsd.ui import account, admin, repository, ssh_keys
from lfsd.ui.chart import human_bytes
from lfsd.ui.pages import PAGES, Pages
from lfsd.ui.security import PREFIX, ui_middleware
from lfsd.ui.static import StaticFiles


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return "—" if value is None else str(value)


def build_ui() -> web.Application:
    ui = web.Application(middlewares=[ui_middleware])
    static = StaticFiles(PREFIX)
    Pages.check()
    ui[PAGES] = Pages({"static": static.url}, {"bytes": human_bytes, "when": _when})
    router = ui.router
    router.add_get("/", account.home)
    router.add_get("/login", account.login_form)
    router.add_post("/login", account.login)
    router.add_post("/logout", account.logout)
    router.add_get("/static/{name}", static.handle)
    router.add_get("/tokens", account.tokens_page)
    router.add_post("/tokens", account.create_token)
    router.add_post("/tokens/revoke", account.revoke_token)
    router.add_get("/ssh-keys", ssh_keys.keys_page)
    router.add_post("/ssh-keys", ssh_keys.add_key)
    router.add_get("/ssh-keys/{key_id}/remove", ssh_keys.confirm_remove)
    router.add_post("/ssh-keys/remove", ssh_keys.remove_key)
    router.add_get("/repo/{path:.+}", repository.repo_page)
    router.add_get("/locks/{lock_id}/unlock", repository.confirm_unlock)
    router.add_post("/locks/unlock", repository.unlock)
    router.add_post("/grants", repository.grant)
    router.add_post("/settings", repository.settings)
    router.add_post("/rename", repository.rename)
    router.add_post("/delete", repository.delete)
    router.add_get("/admin", admin.users_page)
    router.add_post("/admin/users", admin.add_user)
    router.add_post("/admin/users/action", admin.user_action)
    router.add_get("/admin/repos", admin.repos_page)
    router.add_post("/admin/repos", admin.create_repo)
    router.add_get("/admin/audit", admin.audit_page)
    router.add_get("/admin/status", admin.status_page)
    return ui
