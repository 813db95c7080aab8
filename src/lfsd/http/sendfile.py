"""Sending a file range with ``sendfile``, ended when the client stops taking bytes.

A client that stops reading leaves ``sendfile`` waiting on a full socket for ever: the download holds its transfer
slot, and a SIGTERM drain, until the grace period ends. The kernel knows how many bytes the client has acknowledged
(``tcpi_bytes_acked`` in ``TCP_INFO``); when that stops growing for the stall timeout, the connection is closed.
Where ``TCP_INFO`` is not available the send is not watched.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from typing import BinaryIO, Final

# struct tcp_info (Linux): the u64 tcpi_bytes_acked sits at byte 120 (since Linux 4.1).
_TCP_INFO: Final = getattr(socket, "TCP_INFO", None)
_BYTES_ACKED_OFFSET: Final = 120
_POLLS_PER_TIMEOUT: Final = 4
SEND_NOW_LIMIT: Final = 1024 * 1024
"""Ranges up to this size are offered to the socket at once (``send_now``); larger ones go to the loop's own
``sendfile`` from their first byte."""


class DownloadStalled(ConnectionResetError):
    """The client took no bytes for the stall timeout; its connection was closed."""


def send_now(transport: asyncio.Transport, file: BinaryIO, offset: int, count: int) -> int:
    """Bytes of the range the socket took at once, with one ``sendfile`` call on the event loop (0: none).

    A body of a few hundred KiB usually goes whole. The loop's own ``sendfile``, left for the rest, pauses reading,
    waits for the socket to be writable again even after everything went, and moves the file's position: about eight
    system calls and a turn of the loop, a fifth of a 100 KiB download's CPU (issue 17). Only a plain socket with
    nothing queued ahead of the range is written directly; any error is left for the loop's ``sendfile`` to meet
    again, so that it surfaces as it always has.

    Only ranges up to ``SEND_NOW_LIMIT``. A 1 GiB download whose first part went this way cost the client more CPU
    than one sent by the loop's ``sendfile`` alone, as a plain sendfile server sends it: lower without it in all five
    pairs of three A/B runs, and ``bench/bigfetch.py``'s ``git lfs fetch`` went from 1.04-1.06x that server's client
    CPU to 0.99-1.01x (docs/performance.md, seventh round). Why was not found. The limit itself is chosen, not
    measured: it keeps the objects of a few hundred KiB this call was made for.
    """
    if (
        count > SEND_NOW_LIMIT
        or transport.is_closing()
        or transport.get_write_buffer_size()
        or transport.get_extra_info("sslcontext")
    ):
        return 0
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        return os.sendfile(sock.fileno(), file.fileno(), offset, count)
    except OSError:  # the socket is full (BlockingIOError), the client went away, not a regular file...
        return 0


async def send_range(
    transport: asyncio.Transport, file: BinaryIO, offset: int, count: int, *, stall_seconds: float
) -> None:
    loop = asyncio.get_running_loop()
    sending = asyncio.ensure_future(loop.sendfile(transport, file, offset, count))
    sock = transport.get_extra_info("socket")
    if _bytes_acked(sock) is None:
        await sending
        return
    try:
        await _watch(transport, sock, sending, stall_seconds)
    finally:
        if not sending.done():
            sending.cancel()
            await asyncio.wait({sending})


async def _watch(
    transport: asyncio.Transport, sock: socket.socket, sending: asyncio.Future[int], stall_seconds: float
) -> None:
    acked = _bytes_acked(sock)
    moved_at = time.monotonic()
    while True:
        done, _ = await asyncio.wait({sending}, timeout=stall_seconds / _POLLS_PER_TIMEOUT)
        if done:
            sending.result()
            return
        now_acked = _bytes_acked(sock)
        if now_acked != acked:
            acked, moved_at = now_acked, time.monotonic()
        elif time.monotonic() - moved_at >= stall_seconds:
            transport.abort()
            raise DownloadStalled(f"the client took no bytes for {stall_seconds:g} seconds")


def _bytes_acked(sock: socket.socket | None) -> int | None:
    if _TCP_INFO is None or sock is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 256)
    except OSError:
        return None
    if len(info) < _BYTES_ACKED_OFFSET + 8:
        return None
    acked: int = struct.unpack_from("Q", info, _BYTES_ACKED_OFFSET)[0]
    return acked
