"""Concurrent API calls: one idempotency key acts once, one case is claimed once."""

from __future__ import annotations

import threading

from tests.api.conftest import Api
from tests.factories import RESIDENT


def _together(*calls):
    """Run the calls on threads released at the same moment; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_same_idempotency_key_at_once_acts_once(client, make_key, phone):
    phone(RESIDENT).text("楼道灯坏了")
    office = Api(client, make_key("DH-JF"))
    case_id = office.get("/api/v1/cases").json()["items"][0]["id"]
    url = f"/api/v1/cases/{case_id}/comment"

    def post():
        return office.post(url, {"body": "同时"}, headers={"Idempotency-Key": "same"})

    responses = _together(post, post, post, post)
    assert [r.status_code for r in responses] == [200] * 4
    assert len({r.text for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 3
    timeline = office.get(f"/api/v1/cases/{case_id}").json()["timeline"]
    assert [e["kind"] for e in timeline].count("comment") == 1


def test_two_offices_claiming_at_once_one_wins(client, make_key, phone):
    phone(RESIDENT).text("楼道灯坏了")
    town, county = Api(client, make_key("DH-JF")), Api(client, make_key("DH"))
    case_id = town.get("/api/v1/cases").json()["items"][0]["id"]
    url = f"/api/v1/cases/{case_id}/claim"
    responses = _together(lambda: town.post(url, {}), lambda: county.post(url, {}))
    assert sorted(r.status_code for r in responses) == [200, 409]
    timeline = town.get(f"/api/v1/cases/{case_id}").json()["timeline"]
    assert [e["kind"] for e in timeline].count("claimed") == 1
