from __future__ import annotations

from lfsd.core.batch import (
    Action,
    ObjectSpec,
    ValidObject,
    parse_objects,
    plan_download,
    plan_upload,
)
from lfsd.core.oid import Oid

A = Oid("a" * 64)
B = Oid("b" * 64)
C = Oid("c" * 64)


def action(item: ValidObject) -> dict[str, Action]:
    return {"x": Action(href=f"/o/{item.oid}", header={}, expires_in=60)}


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
    results = plan_download(parsed, {B: 2}, action)
    assert [r.error.code if r.error else None for r in results] == [422, 422, 422, 422, 422, 422, None]
    assert results[0].oid == "A" * 64 and results[5].oid == ""
    assert results[6].actions is not None


def test_download_404_for_objects_not_held() -> None:
    results = plan_download(parse_objects([ObjectSpec(str(A), 5)]), {}, action)
    assert results[0].error is not None and results[0].error.code == 404
    assert results[0].actions is None


def test_download_reports_stored_size() -> None:
    (result,) = plan_download(parse_objects([ObjectSpec(str(A), 5)]), {A: 7}, action)
    assert result.size == 7 and result.actions is not None


def test_upload_held_has_no_actions_linkable_is_linked_others_upload() -> None:
    parsed = parse_objects([ObjectSpec(str(A), 1), ObjectSpec(str(B), 2), ObjectSpec(str(C), 3)])
    results, to_link = plan_upload(parsed, {A: 1}, {B: 2}, action)
    assert results[0].actions is None and results[0].error is None
    assert results[1].actions is None and results[1].error is None
    assert results[2].actions is not None
    assert to_link == {B: 2}


def test_upload_size_conflict_with_stored_object() -> None:
    parsed = parse_objects([ObjectSpec(str(A), 2), ObjectSpec(str(B), 5)])
    results, to_link = plan_upload(parsed, {A: 1}, {B: 4}, action)
    assert [r.error.code if r.error else None for r in results] == [422, 422]
    assert to_link == {}
