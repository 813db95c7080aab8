"""Pipe buffers for the session's standard input and output."""

from __future__ import annotations

import fcntl
import os
import socket
import sys

import pytest

from lfsd.ssh.pipes import PIPE_SIZE, widen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
def test_a_pipe_is_widened() -> None:
    read_end, write_end = os.pipe()
    try:
        assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) < PIPE_SIZE
        assert widen(write_end) == PIPE_SIZE
        assert fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ) == PIPE_SIZE  # one buffer, both ends
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_socket_is_left_alone() -> None:
    one, two = socket.socketpair()
    with one, two:
        assert widen(one.fileno()) is None
