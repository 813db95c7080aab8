from __future__ import annotations

from lfsd.core.batch import (
    Action,
    Decision,
    InvalidObject,
    ObjectError,
    ObjectResult,
    ObjectSpec,
    Outcome,
    decide_download,
    decide_upload,
    parse_objects,
    requested,
)
from lfsd.core.oid import Oid

A = Oid("a" * 64)
B = Oid("b" * 64)
C = Oid("c" * 64)


def test_invalid_objects_get_per_object_422_in_order() -> None:
    parsed = parse_objects(
        [
            ObjectSpec("A" * 64, 1),
            ObjectSpec(str(A), -1),
            ObjectSpec(str(A), 1.5),
            ObjectSpec(str(A), True),
            ObjectSpec(str(A), "1"),
            ObjectSpec(None, 1),
            ObjectSpec(str(B), 2),
        ]
    )
    planned = decide_download(parsed, {B: 2})
    assert [p.error.code if p.error else None for p in planned] == [422, 422, 422, 422, 422, 422, None]
    first, sixth = planned[0], planned[5]
    assert isinstance(first, InvalidObject) and first.oid == "A" * 64
    assert isinstance(sixth, InvalidObject) and sixth.oid == ""
    assert planned[6] == Decision(B, 2, Outcome.TRANSFER)
    assert requested(parsed) == {B}


def test_download_404_for_objects_not_held() -> None:
    (decision,) = decide_download(parse_objects([ObjectSpec(str(A), 5)]), {})
    assert isinstance(decision, Decision) and decision.outcome is Outcome.REFUSED
    assert decision.error is not None and decision.error.code == 404


def test_download_reports_stored_size() -> None:
    (decision,) = decide_download(parse_objects([ObjectSpec(str(A), 5)]), {A: 7})
    assert decision == Decision(A, 7, Outcome.TRANSFER)


def test_upload_held_is_present_linkable_is_linked_others_transfer() -> None:
    parsed = parse_objects([ObjectSpec(str(A), 1), ObjectSpec(str(B), 2), ObjectSpec(str(C), 3)])
    assert decide_upload(parsed, {A: 1}, {B: 2}) == [
        Decision(A, 1, Outcome.PRESENT),
        Decision(B, 2, Outcome.LINKED),
        Decision(C, 3, Outcome.TRANSFER),
    ]


def test_upload_size_conflict_with_stored_object() -> None:
    parsed = parse_objects([ObjectSpec(str(A), 2), ObjectSpec(str(B), 5)])
    planned = decide_upload(parsed, {A: 1}, {B: 4})
    assert [p.error.code if p.error else None for p in planned] == [422, 422]
    assert all(isinstance(p, Decision) and p.outcome is Outcome.REFUSED for p in planned)


def test_a_repeated_oid_gets_one_decision_per_request_entry() -> None:
    parsed = parse_objects([ObjectSpec(str(A), 1), ObjectSpec(str(A), 1)])
    assert decide_upload(parsed, {}, {}) == [Decision(A, 1, Outcome.TRANSFER)] * 2


def test_authenticated_is_said_only_of_actions_without_credentials_of_their_own() -> None:
    # git-lfs sends an "authenticated" transfer over a connection of its own: lfsd's links, which carry their
    # Authorization header, must leave it out so that the transfer reuses the batch's connection.
    link = Action("http://lfsd/acme/game.git/info/lfs/objects/a", {"Authorization": "LFSD-Link x"}, 60)
    presigned = Action("https://bucket.s3/a?X-Amz-Signature=s", {"Content-Type": "application/octet-stream"}, 60)
    assert ObjectResult(str(A), 1, {"download": link}).authenticated is None
    assert ObjectResult(str(A), 1, {"upload": link, "verify": link}).authenticated is None
    assert ObjectResult(str(A), 1, {"download": presigned}).authenticated is True
    assert ObjectResult(str(A), 1, {"upload": presigned, "verify": link}).authenticated is True
    assert ObjectResult(str(A), 1, error=ObjectError(404, "gone")).authenticated is None
