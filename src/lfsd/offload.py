"""The one place where blocking work (file I/O, hashing large buffers, password KDFs) leaves the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def in_thread(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    return await thread_future(fn, *args, **kwargs)


def thread_future(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
    """``fn`` started in a worker thread (with the caller's context variables, as ``asyncio.to_thread``), as a
    future: a caller that must wait for the thread even when cancelled shields this future, with no task to create
    around the hop (issue 17: one small upload is one such hop)."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return asyncio.get_running_loop().run_in_executor(None, call)
