"""InstrumentedStore: every operation timed; only the store's own failures counted as failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection

import pytest

from lfsd.core.errors import ChecksumMismatch, ServiceUnavailable
from lfsd.core.oid import Oid
from lfsd.core.ports import ByteSource, blocking_presence
from lfsd.storage.instrumented import InstrumentedStore

OID = Oid.parse("a" * 64)


class Observed:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, bool]] = []

    def observe(self, backend: str, operation: str, seconds: float, *, failed: bool) -> None:
        self.calls.append((backend, operation, seconds, failed))


class Failing:
    """Raises ``error`` from every operation (``None``: succeeds)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    async def _maybe(self) -> None:
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error

    async def put(self, oid: Oid, size: int, source: ByteSource) -> None:
        await self._maybe()

    async def read(self, oid: Oid, start: int, length: int) -> AsyncIterator[bytes]:
        yield b"x"
        await self._maybe()


@pytest.mark.parametrize(
    ("error", "failed"),
    [
        (None, False),
        (ChecksumMismatch(), False),  # the client's fault
        (ServiceUnavailable("down"), True),
        (OSError("disk"), True),
        (asyncio.CancelledError(), False),  # the caller went away
    ],
)
async def test_failures_are_the_stores_own(error: BaseException | None, failed: bool) -> None:
    observed = Observed()
    store = InstrumentedStore(Failing(error), "local", observed)  # type: ignore[arg-type]
    for operation in ("put", "read"):
        raised: type[BaseException] | None = None
        try:
            if operation == "put":
                await store.put(OID, 1, None)  # type: ignore[arg-type]
            else:
                assert [chunk async for chunk in store.read(OID, 0, 1)] == [b"x"]
        except BaseException as exc:
            raised = type(exc)
        assert raised is (None if error is None else type(error))
    assert [(b, o, f) for b, o, _, f in observed.calls] == [("local", "put", failed), ("local", "read", failed)]
    assert all(seconds >= 0 for _, _, seconds, _ in observed.calls)


class Local:
    """A store with a blocking presence check, as LocalStore has on a local disk."""

    async def present(self, oids: Collection[Oid]) -> set[Oid]:
        return set(oids)

    def presence_now(self) -> Callable[[Collection[Oid]], set[Oid]]:
        return set


def test_the_blocking_presence_check_is_passed_through_and_timed_only_where_the_store_has_one() -> None:
    observed = Observed()
    present_now = blocking_presence(InstrumentedStore(Local(), "local", observed))  # type: ignore[arg-type]
    assert present_now is not None
    assert present_now([OID]) == {OID}
    assert [(backend, operation, failed) for backend, operation, _, failed in observed.calls] == [
        ("local", "present", False)
    ]
    assert blocking_presence(InstrumentedStore(Failing(None), "s3", observed)) is None  # type: ignore[arg-type]
