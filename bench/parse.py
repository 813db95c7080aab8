"""The cost of parsing a Batch API request body: from the bytes of a 100-object upload batch to the core's
``ObjectSpec`` list the handler passes on (``parse_batch``, plus building the specs where the wire model does not
hold them, as before issue 17's change), and ``json.loads`` of the same bytes for comparison. Prints microseconds per
body, the best of several timeit repeats. Run it with ``PYTHONPATH`` pointing at another tree's ``src`` for A/B."""

from __future__ import annotations

import argparse
import json
import os
import timeit

from lfsd.core.batch import ObjectSpec
from lfsd.http.wire import parse_batch


def specs(data: bytes) -> list[ObjectSpec]:
    objects = parse_batch(data).objects
    if all(isinstance(item, ObjectSpec) for item in objects[:1]):
        return objects
    return [ObjectSpec(item.oid, item.size) for item in objects]  # pydantic's WireObject (before)


def body(objects: int) -> bytes:
    return json.dumps(
        {
            "operation": "upload",
            "transfers": ["basic"],
            "ref": {"name": "refs/heads/main"},
            "objects": [{"oid": os.urandom(32).hex(), "size": 100 * 1024 + n} for n in range(objects)],
            "hash_algo": "sha256",
        }
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    data = body(options.objects)
    for name, call in (("to specs", lambda: specs(data)), ("json.loads", lambda: json.loads(data))):
        best = min(timeit.repeat(call, number=options.number, repeat=options.repeat)) / options.number
        print(f"{name:12} {options.objects} objects, {len(data)} bytes: {best * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
