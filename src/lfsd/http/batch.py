"""``POST …/info/lfs/objects/batch``."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from lfsd.core.auth import Permission
from lfsd.core.batch import ObjectResult
from lfsd.core.errors import Conflict, MethodNotAllowed, PayloadTooLarge, Unprocessable
from lfsd.core.operation import Operation
from lfsd.http.auth import identify
from lfsd.http.body import read_body
from lfsd.http.errors import lfs_json
from lfsd.http.keys import ACCESS, METRICS, SERVICE, SETTINGS
from lfsd.http.links import HttpLinks
from lfsd.http.media import check_accept, check_content_type
from lfsd.http.paths import base_url, repo_path
from lfsd.http.wire import parse_batch, render_object


async def batch(request: web.Request) -> web.Response:
    if request.method != "POST":
        raise MethodNotAllowed(headers={"Allow": "POST"})
    settings = request.app[SETTINGS]
    path = repo_path(request)
    check_accept(request)
    identity = await identify(request)
    check_content_type(request)
    body = parse_batch(await read_body(request, settings.batch_max_bytes))

    operation = Operation.for_batch(body.operation)
    if operation is None:
        raise Unprocessable(f"unknown operation {body.operation!r}: expected download or upload")
    if body.hash_algo not in (None, "sha256"):
        raise Conflict(f"unsupported hash algorithm {body.hash_algo!r}: lfsd uses sha256")
    if body.transfers is not None and "basic" not in body.transfers:
        raise Unprocessable("no supported transfer adapter: lfsd offers basic")
    if len(body.objects) > settings.batch_max_objects:
        raise PayloadTooLarge(f"at most {settings.batch_max_objects} objects per batch request")

    needed = Permission.WRITE if operation is Operation.UPLOAD else Permission.READ
    repo = await request.app[ACCESS].authorize(identity, path, needed, create=operation is Operation.UPLOAD)
    results = await request.app[SERVICE].batch(identity, repo, operation, body.objects, HttpLinks(base_url(request)))
    # One labelled increment per outcome, not per object: ``labels`` looks its child up under a lock (issue 17).
    counter = request.app[METRICS].batch_objects
    for outcome, count in Counter(_outcome(result) for result in results).items():
        counter.labels(operation.value, outcome).inc(count)
    return lfs_json({"transfer": "basic", "objects": [render_object(r) for r in results], "hash_algo": "sha256"})


def _outcome(result: ObjectResult) -> str:
    if result.error is not None:
        return {404: "not_found", 422: "invalid"}.get(result.error.code, "error")
    return "action" if result.actions else "present"
