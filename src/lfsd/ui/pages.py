"""The UI's Jinja2 environment, made on the first page rendered: a server whose UI nobody opens never loads Jinja2
or compiles a template (issue 17: about 1.5 MiB resident). What could fail at start-up is still checked there:
Jinja2 installed, the templates' directory present (``Pages.check``); a template itself was always compiled on
its first use."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    import jinja2

TEMPLATES: Final = "templates"


class Pages:
    def __init__(self, globals_: Mapping[str, object], filters: Mapping[str, Callable[..., object]]) -> None:
        self._globals = dict(globals_)
        self._filters = dict(filters)
        self._env: jinja2.Environment | None = None
        self._lock = threading.Lock()

    @staticmethod
    def check() -> None:
        """Raise now what the first page would otherwise raise: Jinja2 missing, or the templates missing."""
        if importlib.util.find_spec("jinja2") is None:
            raise RuntimeError("jinja2 is not installed: the web UI needs it (or set LFSD_UI=false)")
        if not resources.files("lfsd.ui").joinpath(TEMPLATES).is_dir():
            raise RuntimeError("the web UI's templates are missing from the lfsd package")

    @property
    def env(self) -> jinja2.Environment:
        with self._lock:
            if self._env is None:
                import jinja2  # the first page (module docstring)

                env = jinja2.Environment(
                    loader=jinja2.PackageLoader("lfsd.ui", TEMPLATES),
                    autoescape=True,  # every page: user names, labels, lock paths are text, never markup
                    undefined=jinja2.StrictUndefined,
                )
                env.globals.update(self._globals)
                env.filters.update(self._filters)
                self._env = env
            return self._env

    def render(self, template: str, context: Mapping[str, object], *, status: int = 200) -> web.Response:
        text = self.env.get_template(template).render(context)
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


PAGES: Final = web.AppKey("ui_pages", Pages)
