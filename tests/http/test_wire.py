"""The Batch and Locking API bodies, parsed by hand (issue 17: no pydantic on the LFS path) with pydantic's rules:
400 for anything that is not UTF-8 JSON, 422 naming the first misshapen field, unknown fields ignored."""

from __future__ import annotations

import pytest

from lfsd.core.batch import ObjectSpec
from lfsd.core.errors import BadRequest, Unprocessable
from lfsd.http.wire import (
    WireRef,
    parse_batch,
    parse_create_lock,
    parse_unlock,
    parse_verify_locks,
    parse_verify_object,
)

MALFORMED = [
    b"",
    b"{",
    b'{"operation":"upload","objects":[]} x',
    b'{"operation":"up\xff","objects":[]}',  # not UTF-8
    '{"operation":"upload","objects":[]}'.encode("utf-16"),  # json.loads alone would detect UTF-16
    b'\xef\xbb\xbf{"operation":"upload","objects":[]}',  # a BOM
    b'{"operation":"\\ud800","objects":[]}',  # a lone surrogate
    b'{"operation":"upload","objects":[{"\\uDC00":1}]}',
    b'{"operation":"upload","objects":[{"oid":' + b"[" * 100_000 + b"]" * 100_000 + b"}]}",
    b'{"operation":"upload","objects":[{"size":' + b"9" * 5000 + b"}]}",  # past Python's digit limit
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_json_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest, match=r"^malformed JSON in request body$"):
        parse_batch(body)


MISSHAPEN = [
    (b"null", "body: Input should be an object"),
    (b"[]", "body: Input should be an object"),
    (b'{"objects":[]}', "operation: Field required"),
    (b'{"operation":7,"objects":[]}', "operation: Input should be a valid string"),
    (b'{"operation":"upload"}', "objects: Field required"),
    (b'{"operation":"upload","objects":{}}', "objects: Input should be a valid array"),
    (b'{"operation":"upload","objects":[{},1]}', "objects.1: Input should be an object"),
    (b'{"operation":"upload","objects":[],"transfers":"basic"}', "transfers: Input should be a valid array"),
    (b'{"operation":"upload","objects":[],"transfers":["basic",1]}', "transfers.1: Input should be a valid string"),
    (b'{"operation":"upload","objects":[],"ref":"main"}', "ref: Input should be an object"),
    (b'{"operation":"upload","objects":[],"ref":{"name":1}}', "ref.name: Input should be a valid string"),
    (b'{"operation":"upload","objects":[],"hash_algo":1}', "hash_algo: Input should be a valid string"),
]


@pytest.mark.parametrize(("body", "message"), MISSHAPEN)
def test_a_misshapen_batch_is_422_naming_the_field(body: bytes, message: str) -> None:
    with pytest.raises(Unprocessable) as raised:
        parse_batch(body)
    assert raised.value.message == f"invalid batch request: {message}"


def test_a_batch_keeps_what_it_was_sent_and_ignores_unknown_fields() -> None:
    body = (
        b' {"operation":"upload","objects":[{"oid":"x","size":1.5,"extra":1},{}],"transfers":["basic"],'
        b'"ref":{"name":null},"hash_algo":"sha256","unknown":{"a":[1]}} '
    )
    batch = parse_batch(body)
    assert batch.objects == [ObjectSpec("x", 1.5), ObjectSpec(None, None)]
    assert (batch.operation, batch.transfers, batch.ref, batch.hash_algo) == (
        "upload",
        ["basic"],
        WireRef(None),
        "sha256",
    )
    bare = parse_batch(b'{"operation":"download","objects":[],"transfers":null,"ref":null,"hash_algo":null}')
    assert (bare.transfers, bare.ref, bare.hash_algo) == (None, None, None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"oid":"a","size":true}', "size: Input should be a valid integer"),  # a bool is not an int
        (b'{"oid":"a","size":"5"}', "size: Input should be a valid integer"),
        (b'{"oid":"a","size":5.5}', "size: Input should be a valid integer"),
        (b'{"oid":"a"}', "size: Field required"),
        (b'{"oid":5,"size":5}', "oid: Input should be a valid string"),
        (b'{"size":5}', "oid: Field required"),
    ],
)
def test_verify_object_wants_a_string_oid_and_an_integer_size(body: bytes, message: str) -> None:
    with pytest.raises(Unprocessable) as raised:
        parse_verify_object(body)
    assert raised.value.message == f"invalid verify request: {message}"


def test_verify_object() -> None:
    verify = parse_verify_object(b'{"oid":"a","size":5,"other":null}')
    assert (verify.oid, verify.size) == ("a", 5)


@pytest.mark.parametrize("force", [b"1", b'"true"', b"null", b"0"])
def test_unlock_force_is_strictly_a_boolean(force: bytes) -> None:
    with pytest.raises(Unprocessable, match=r"^invalid unlock request: force: Input should be a valid boolean$"):
        parse_unlock(b'{"force":' + force + b"}")


def test_lock_bodies_may_be_empty_where_the_spec_allows() -> None:
    assert (parse_unlock(b"").force, parse_unlock(b" \n").ref) == (False, None)
    assert parse_unlock(b'{"force":true,"ref":{"name":"refs/heads/main"}}').force is True
    verify = parse_verify_locks(b"")
    assert (verify.cursor, verify.limit, verify.ref) == (None, None, None)
    verify = parse_verify_locks(b'{"cursor":"c","limit":"x","ref":{}}')
    assert (verify.cursor, verify.limit, verify.ref) == ("c", "x", WireRef(None))
    with pytest.raises(BadRequest):
        parse_create_lock(b"")
    with pytest.raises(Unprocessable, match=r"^invalid lock request: ref: Input should be an object$"):
        parse_create_lock(b'{"path":"a","ref":[]}')
    lock = parse_create_lock(b'{"path":["not","a","path"]}')
    assert (lock.path, lock.ref) == (["not", "a", "path"], None)
