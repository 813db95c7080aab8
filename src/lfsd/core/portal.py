"""What a signed-in person sees first: the repositories they can read, with their figures."""

from __future__ import annotations

from lfsd.core.auth import Identity, Permission
from lfsd.core.directory import RepoAdmin, RepoInfo


async def visible_repos(repos: RepoAdmin, identity: Identity) -> list[RepoInfo]:
    """Server admins see every repository; others the public ones and those they hold a grant on."""
    listed = await repos.list_repos()
    if identity.is_admin:
        return listed
    granted = {str(grant.repo_path) for grant in await repos.grants(user_id=identity.user_id)}
    return [info for info in listed if info.repo.is_public or str(info.repo.path) in granted]


def may_read(identity: Identity, info: RepoInfo, granted: Permission) -> bool:
    return identity.is_admin or info.repo.is_public or granted >= Permission.READ
