"""Structured logs: one JSON object per line for machines, or plain text for a terminal."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from datetime import UTC, datetime
from typing import Final

# Attributes every LogRecord has; anything else on a record came in through ``extra=`` and is logged as a field.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Every request writes one (issue 17): the second's part of the timestamp and the
    encoder are made once, not per line (about 7 of 20 µs per access-log line here)."""

    def __init__(self) -> None:
        super().__init__()
        self._encode = json.JSONEncoder(default=str, separators=(",", ":")).encode
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float) -> str:
        """``datetime.isoformat(timespec="milliseconds")`` of ``created`` in UTC, its seconds formatted once."""
        # How datetime.fromtimestamp splits a float (fractional part rounded half-even to microseconds).
        fraction, whole = math.modf(created)
        second, micro = int(whole), round(fraction * 1_000_000)
        if micro >= 1_000_000:
            second, micro = second + 1, micro - 1_000_000
        if second != self._second:
            self._second_text = datetime.fromtimestamp(second, UTC).isoformat()[:-6]  # without "+00:00"
            self._second = second
        return f"{self._second_text}.{micro // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry = self._head(record.created, record.levelname, record.name, record.getMessage())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._encode(entry)

    def line(self, created: float, levelname: str, name: str, message: str, fields: dict[str, object]) -> str:
        """What ``format`` makes of a record with these attributes and ``fields`` as its ``extra`` (no exception)."""
        entry = self._head(created, levelname, name, message)
        for key, value in fields.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        return self._encode(entry)

    def _head(self, created: float, levelname: str, name: str, message: str) -> dict[str, object]:
        return {"ts": self._timestamp(created), "level": levelname.lower(), "logger": name, "message": message}


def write_json_line(logger: logging.Logger, level: int, message: str, fields: dict[str, object]) -> bool:
    """Write the line ``logger.log(level, message, extra=fields)`` would write, without making a ``LogRecord``:
    only where that record would reach nothing but one plain ``StreamHandler`` with a ``JsonFormatter`` (what
    ``configure`` sets up for json), unfiltered. False when it did not write: the caller logs the usual way.

    Every request logs one line (issue 17): the record, the handler chain and ``format``'s walk over the record's
    attributes were half of a line's 20 to 25 µs. The line is ``JsonFormatter.format``'s, field for field.
    """
    if not logger.isEnabledFor(level) or logger.filters:
        return False
    handler: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:  # Logger.callHandlers' walk: each logger's handlers, up to one that stops propagation
        for candidate in current.handlers:
            if handler is not None:
                return False
            handler = candidate
        current = current.parent if current.propagate else None
    if (
        type(handler) is not logging.StreamHandler
        or handler.filters
        or level < handler.level
        or type(handler.formatter) is not JsonFormatter
    ):
        return False
    text = handler.formatter.line(time.time(), logging.getLevelName(level), logger.name, message, fields)
    handler.acquire()
    try:
        handler.stream.write(text + handler.terminator)
        handler.flush()
    except Exception:
        # The usual way meets the error again and reports it as logging does (a flush that failed after the write
        # went may repeat the line: better twice than lost).
        return False
    finally:
        handler.release()
    return True


_NAMED_ESCAPES: Final = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if char == " " or char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    """``text`` on one line, unambiguously: backslash, CR, LF, other C0/C1 controls, DEL, line separators,
    format characters and undecodable bytes (surrogates from aiohttp's surrogateescape) become escapes."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape_char(char) for char in text)


def _field(value: object) -> str:
    # Quoted where a space, '=' or '"' could make one value look like several fields (logfmt's rule).
    text = escape(str(value))
    if text and not any(char in text for char in ' ="'):
        return text
    return '"' + text.replace('"', '\\"') + '"'


class TextFormatter(logging.Formatter):
    """One line per record, whatever the client sent: every field and the message are escaped (a ``%0a`` in a
    path must not forge a log line). A traceback follows on indented lines, which no record's first line is."""

    def format(self, record: logging.LogRecord) -> str:
        when = self.formatTime(record)
        text = f"{when} {record.levelname} {escape(record.name)}: {escape(record.getMessage())}"
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        if fields:
            text += "  " + " ".join(f"{escape(k)}={_field(v)}" for k, v in fields.items())
        details = ""
        if record.exc_info:
            details = self.formatException(record.exc_info)
        if record.stack_info:
            details += ("\n" if details else "") + self.formatStack(record.stack_info)
        if details:
            text += "".join("\n    " + escape(line) for line in details.splitlines())
        return text


def configure(log_format: str, level: str) -> None:
    """Replace the root handlers: ``log_format`` is json, text, or auto (text on a terminal, else json)."""
    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("lfsd.db").setLevel(logging.NOTSET)
    # aiohttp's own access log is replaced by lfsd.access (see lfsd.http.request_log).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
