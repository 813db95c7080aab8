"""After each response is sent: the request's metrics and its one JSON log line."""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from lfsd.http.errors import REQUEST_ID
from lfsd.http.keys import METRICS
from lfsd.http.state import USER
from lfsd.observability.logs import write_json_line

UNMATCHED: Final = "unmatched"

log = logging.getLogger("lfsd.access")


def route_of(request: web.BaseRequest) -> str:
    """The route template (``/{repo}/info/lfs/objects/batch``), never the raw path: labels stay bounded."""
    match_info = getattr(request, "match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is None:
        return UNMATCHED
    return str(resource.canonical)


class RequestLog(AbstractAccessLogger):
    """aiohttp calls this once the whole response (a sendfile download too) has gone out.

    ``repo`` and ``user_agent`` are the client's text as sent (decoded, so ``%0a`` is a newline): the formatters
    escape them (observability.logs), here they are only cut to a bounded length.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = route_of(request)
        method = request.method
        sent = response.content_length if response.content_length is not None else response.body_length
        if isinstance(request, web.Request) and METRICS in request.app:
            request.config_dict[METRICS].observe_request(
                route, method, response.status, time, sent or 0, request.content_length or 0
            )
        if not self.logger.isEnabledFor(logging.INFO):
            return
        match_info = getattr(request, "match_info", {})
        fields: dict[str, object] = {
            "request_id": request.get(REQUEST_ID, ""),
            "method": method,
            "route": route,
            "repo": str(match_info.get("repo", ""))[:300],
            "status": response.status,
            "bytes_in": request.content_length or 0,
            "bytes_out": sent or 0,
            "duration_s": round(time, 6),
            "user": request.get(USER, ""),
            "user_agent": request.headers.get("User-Agent", "")[:200],
            "remote": request.remote or "",
        }
        if not write_json_line(self.logger, logging.INFO, f"{method} {route} {response.status}", fields):
            self.logger.info("%s %s %s", method, route, response.status, extra=fields)

    @property
    def enabled(self) -> bool:
        return True
