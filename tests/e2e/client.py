"""A minimal LFS client for tests and benchmarks: batch over urllib, bodies through curl."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from typing import Any

LFS_JSON = "application/vnd.git-lfs+json"


def batch(server_url: str, repo: str, user: str, token: str, operation: str, oid: str, size: int) -> dict[str, Any]:
    """One-object batch request; returns the object's response entry."""
    body = json.dumps({"operation": operation, "objects": [{"oid": oid, "size": size}]}).encode()
    request = urllib.request.Request(
        f"{server_url}/{repo}.git/info/lfs/objects/batch",
        data=body,
        method="POST",
        headers={
            "Accept": LFS_JSON,
            "Content-Type": LFS_JSON,
            "Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        entry: dict[str, Any] = json.load(response)["objects"][0]
        return entry


def curl_command(action: dict[str, Any], *args: str) -> list[str]:
    """curl against an action's href with its headers; it prints ``<http code> <bytes downloaded>``."""
    headers = [arg for name, value in action.get("header", {}).items() for arg in ("-H", f"{name}: {value}")]
    return ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", *headers, *args, action["href"]]


def curl(action: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(curl_command(action, *args), capture_output=True, text=True, timeout=1200, check=False)


def start_curl(action: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    """The same, in the background (for concurrent or interrupted transfers)."""
    return subprocess.Popen(curl_command(action, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
