"""Git's pkt-line framing, as the git-lfs-transfer protocol uses it.

Each packet is four lowercase hex digits giving its whole length (header included), then the payload; ``0000`` is a
flush packet and ``0001`` a delimiter. Parsing is strict: anything else (non-hex or uppercase digits, the reserved
lengths 2 and 3, a length above 65520, text that is not UTF-8, a stream cut mid-packet) is a ``ProtocolError``,
which ends the session: after garbage there is no telling where the next packet starts.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Final, Protocol

MAX_PACKET: Final = 65520  # git's LARGE_PACKET_MAX: the header's four bytes included
MAX_DATA: Final = MAX_PACKET - 4
_HEX: Final = frozenset(b"0123456789abcdef")


class ProtocolError(Exception):
    """The peer broke the framing or the protocol; the session cannot go on. The message is safe to show."""


class ConnectionLost(ProtocolError):
    """The stream ended inside a packet or a command."""


class Marker(Enum):
    FLUSH = "0000"
    DELIM = "0001"


FLUSH: Final = Marker.FLUSH
DELIM: Final = Marker.DELIM

Packet = bytes | Marker


class Reader(Protocol):
    """``asyncio.StreamReader``'s shape (an asyncssh channel's reader has it too)."""

    async def readexactly(self, n: int) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


class EndOfStream(Exception):
    """The peer closed the stream between two packets: the end of the session, not an error."""


class PacketReader:
    """Reads packets; every wait is bounded by the timeout the caller gives (idle between commands, stall within)."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self.received = 0  # bytes read, headers included

    async def read(self, wait_seconds: float) -> Packet:
        """The next packet. Raises ``EndOfStream`` on a clean close before a header, ``ConnectionLost`` inside one,
        ``TimeoutError`` when nothing arrives for ``wait_seconds``, ``ProtocolError`` on a bad header."""
        async with asyncio.timeout(wait_seconds):
            try:
                header = await self._reader.readexactly(4)
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise EndOfStream() from None
                raise ConnectionLost("the connection closed inside a packet header") from None
            length = parse_header(header)
            self.received += 4
            if length == 0:
                return FLUSH
            if length == 1:
                return DELIM
            try:
                payload = await self._reader.readexactly(length - 4)
            except asyncio.IncompleteReadError:
                raise ConnectionLost("the connection closed inside a packet") from None
            self.received += len(payload)
            return payload


def parse_header(header: bytes) -> int:
    """The packet length the four header bytes give; 0 flush, 1 delimiter, else 4..``MAX_PACKET``."""
    if len(header) != 4 or not _HEX.issuperset(header):
        raise ProtocolError(f"invalid pkt-line header {header[:4]!r}")
    length = int(header, 16)
    if length in (2, 3):
        raise ProtocolError(f"unsupported pkt-line length {length}")
    if length > MAX_PACKET:
        raise ProtocolError(f"pkt-line length {length} is above {MAX_PACKET}")
    return length


def text_of(packet: Packet) -> str:
    """A text packet's line, without its trailing newline."""
    if isinstance(packet, Marker):
        raise ProtocolError(f"expected a text packet, got {packet.value}")
    try:
        text = packet.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("a text packet is not UTF-8") from None
    return text[:-1] if text.endswith("\n") else text


def encode_text(line: str) -> bytes:
    payload = line.encode("utf-8") + b"\n"
    if len(payload) > MAX_DATA:
        raise ValueError("a text packet is longer than a pkt-line allows")
    return b"%04x" % (len(payload) + 4) + payload


def encode_data(data: bytes | memoryview) -> bytes:
    """One data packet (``len(data)`` at most ``MAX_DATA``)."""
    if not 0 < len(data) <= MAX_DATA:
        raise ValueError("a data packet holds 1 to 65516 bytes")
    return b"%04x" % (len(data) + 4) + bytes(data)


class PacketWriter:
    """Collects packets and sends them with ``send``; a peer that takes nothing for ``stall`` seconds is cut off."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._pending: list[bytes | memoryview] = []
        self.sent = 0

    def text(self, line: str) -> None:
        self._pending.append(encode_text(line))

    def delim(self) -> None:
        self._pending.append(DELIM.value.encode())

    def flush(self) -> None:
        self._pending.append(FLUSH.value.encode())

    def data(self, data: bytes | memoryview) -> None:
        # Headers and views of ``data`` (no copy) until ``send`` joins them: one copy per byte, where a packet
        # encoded on its own took three (slice, header + payload, join). ``data`` must stay unchanged until then.
        view = memoryview(data)
        for start in range(0, len(view), MAX_DATA):
            part = view[start : start + MAX_DATA]
            self._pending.append(b"%04x" % (len(part) + 4))
            self._pending.append(part)

    async def send(self, stall: float) -> None:
        if not self._pending:
            return
        chunk = b"".join(self._pending)
        self._pending.clear()
        self._writer.write(chunk)
        self.sent += len(chunk)
        async with asyncio.timeout(stall):
            await self._writer.drain()
