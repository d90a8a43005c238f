"""`/api/v1/cases`: the contract's JSON, filters, cursor pages, actions, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.conftest import HN_RESIDENT, Api
from tests.factories import COUNTY_OFFICE, RESIDENT, TOWN_OFFICE, WORKER_A, WORKER_C

CASE_FIELDS = {
    "id",
    "code",
    "status",
    "level",
    "grid",
    "town",
    "county",
    "priority",
    "category",
    "summary",
    "resident",
    "claimed_by",
    "rating",
    "created_at",
    "updated_at",
    "claimed_at",
    "resolved_at",
    "closed_at",
    "claim_due_at",
    "resolve_due_at",
    "routing",
}
BUREAU = "+8613911112222"  # a bureau's duty phone: no member, no resident


@pytest.fixture
def town(client, make_key, city) -> Api:
    return Api(client, make_key("DH-JF"))


@pytest.fixture
def opened(phone, town):
    """A case opened by the registered resident, as the town office sees it."""
    phone(RESIDENT).text("楼道灯坏了")
    return town.get("/api/v1/cases").json()["items"][0]


def test_case_json_has_the_contract_fields(town, opened, clock):
    assert set(opened) == CASE_FIELDS
    assert opened["status"] == "open" and opened["level"] == "grid"
    assert (opened["grid"], opened["town"], opened["county"]) == ("DH-01", "DH-JF", "DH")
    assert opened["priority"] == "normal" and opened["resident"] == "137****0001"
    assert opened["routing"]["method"] == "registered"
    assert "DH-01" in opened["routing"]["evidence"]["reason"]
    assert opened["created_at"].startswith("2026-11-25T02:00:00")
    assert opened["claim_due_at"].startswith("2026-11-25T02:30:00")
    detail = town.get(f"/api/v1/cases/{opened['id']}").json()
    assert set(detail) == CASE_FIELDS | {"timeline"}
    assert [e["kind"] for e in detail["timeline"]] == ["received", "routed", "forwarded"]
    first = detail["timeline"][0]
    assert set(first) == {"at", "kind", "actor", "channel", "detail"}
    assert first["actor"] == "137****0001" and first["channel"] == "sms"
    assert first["detail"]["text"] == "楼道灯坏了"
    assert "13700000001" not in str(detail)


def test_filters_and_cursor_pages(client, make_key, phone, clock, rt):
    county = Api(client, make_key("DH"))
    for i in range(5):
        phone(f"+861370000010{i}").text(f"翁山新村3幢 第{i}件")
        clock.advance(minutes=1)
    phone(HN_RESIDENT).text("环南的事")
    since = clock.now
    clock.advance(minutes=1)
    phone(RESIDENT).text("楼道灯坏了")
    everything = county.get("/api/v1/cases").json()["items"]
    assert len(everything) == 7
    ids = [c["id"] for c in everything]
    assert ids == sorted(ids, reverse=True)  # newest first, by id

    pages, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = county.get("/api/v1/cases", **params).json()
        pages.append([c["id"] for c in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == ids

    def ids_for(**params: object) -> set[int]:
        return {c["id"] for c in county.get("/api/v1/cases", **params).json()["items"]}

    assert len(ids_for(town="DH-HN")) == 1 and len(ids_for(town="DH-JF")) == 6
    assert ids_for(grid="DH-01") == ids_for(town="DH-JF")
    assert ids_for(grid="NOPE") == set()
    assert ids_for(status="open") == set(ids) and ids_for(status="claimed") == set()
    assert ids_for(level="grid") == set(ids) and ids_for(level="county") == set()
    newest = ids_for(updated_since=(since + timedelta(seconds=30)).isoformat())
    assert newest == {ids[0]}
    assert len(ids_for(updated_since=since.isoformat())) == 2  # at or after

    assert county.get("/api/v1/cases", cursor="garbage!").status_code == 422
    assert county.get("/api/v1/cases", status="lost").status_code == 422
    assert county.get("/api/v1/cases", updated_since="2026-11-25T02:00:00").status_code == 422
    for number in ("0.5", "1764036000", " -1 "):  # not taken for Unix time
        refused = county.get("/api/v1/cases", updated_since=number)
        assert refused.status_code == 422 and "ISO-8601" in refused.text, number
    assert county.get("/api/v1/cases", limit=0).status_code == 422


def test_claim_then_claim_again_is_409(town, opened, gateway, work):
    case_id = opened["id"]
    r = town.post(f"/api/v1/cases/{case_id}/claim", {})
    assert r.status_code == 200
    work()
    body = r.json()
    assert body["status"] == "claimed" and body["claimed_by"] == "解放街道"
    claimed = body["timeline"][-1]
    assert claimed["kind"] == "claimed" and claimed["channel"] == "api"
    assert claimed["actor"].startswith("api:DH-JF:gl_")
    assert "解放街道" in gateway.to(RESIDENT)[-1]  # the resident gets a named answer
    assert "已由解放街道签收" in gateway.to(WORKER_A)[-1]
    r = town.post(f"/api/v1/cases/{case_id}/claim", {})
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    assert town.post(f"/api/v1/cases/{case_id}/claim").status_code == 409  # no body is {}
    assert town.post(f"/api/v1/cases/{case_id}/claim", {"x": 1}).status_code == 422


def test_escalate_up_to_the_city_then_409(client, make_key, phone, gateway, work):
    phone(RESIDENT).text("海堤裂缝")
    city = Api(client, make_key("CITY"))
    case_id = city.get("/api/v1/cases").json()["items"][0]["id"]
    r = city.post(f"/api/v1/cases/{case_id}/escalate", {"reason": "需要街道"})
    assert r.json()["level"] == "town" and r.json()["status"] == "open"
    work()
    assert "需要街道" in gateway.to(TOWN_OFFICE)[-1]
    assert city.post(f"/api/v1/cases/{case_id}/escalate", {"reason": "区"}).json()["level"] == (
        "county"
    )
    work()
    assert "区" in gateway.to(COUNTY_OFFICE)[-1]
    assert city.post(f"/api/v1/cases/{case_id}/escalate", {"reason": "市"}).json()["level"] == (
        "city"
    )
    r = city.post(f"/api/v1/cases/{case_id}/escalate", {"reason": "more"})
    assert r.status_code == 409
    assert city.post(f"/api/v1/cases/{case_id}/escalate", {"reason": ""}).status_code == 422


def test_resolve_comment_message_and_what_a_closed_case_allows(town, opened, gateway, phone, work):
    case_id = opened["id"]
    r = town.post(f"/api/v1/cases/{case_id}/message", {"body": "师傅下午到"})
    assert r.status_code == 200 and r.json()["status"] == "open"  # a message does not claim
    work()
    assert gateway.to(RESIDENT)[-1] == f"#{opened['code']} 解放街道：师傅下午到"
    sent = len(gateway.sent)
    r = town.post(f"/api/v1/cases/{case_id}/comment", {"body": "已联系物业"})
    assert r.json()["timeline"][-1]["kind"] == "comment"
    assert r.json()["timeline"][-1]["detail"] == {"body": "已联系物业"}
    assert len(gateway.sent) == sent  # internal: nobody texted (the outbox has no row)
    r = town.post(f"/api/v1/cases/{case_id}/resolve", {"note": "已更换灯泡"})
    assert r.json()["status"] == "resolved" and r.json()["resolved_at"] is not None
    assert town.post(f"/api/v1/cases/{case_id}/resolve", {"note": "again"}).status_code == 409
    phone(RESIDENT).text("1")
    assert "已更换灯泡" in gateway.to(RESIDENT)[-2]
    closed = town.get(f"/api/v1/cases/{case_id}").json()
    assert closed["status"] == "closed" and closed["rating"] == 1
    for action, body in (
        ("claim", {}),
        ("assign", {"phone": BUREAU}),
        ("escalate", {"reason": "x"}),
        ("resolve", {"note": "x"}),
        ("message", {"body": "x"}),
        ("transfer", {"grid": "DH-02"}),
    ):
        r = town.post(f"/api/v1/cases/{case_id}/{action}", body)
        assert r.status_code == 409, action
    assert town.post(f"/api/v1/cases/{case_id}/comment", {"body": "归档"}).status_code == 200


def test_transfer_forwards_to_the_new_grid(town, opened, gateway, work):
    r = town.post(f"/api/v1/cases/{opened['id']}/transfer", {"grid": "DH-02"})
    assert r.status_code == 200
    work()
    assert r.json()["grid"] == "DH-02" and r.json()["status"] == "open"
    assert f"#{opened['code']}" in gateway.to(WORKER_C)[-1]
    r = town.post(f"/api/v1/cases/{opened['id']}/transfer", {"grid": "DH-JF-WS"})
    assert r.status_code == 422  # a community is not a grid


def test_assign_to_any_phone_which_then_works_it_by_sms(town, opened, gateway, phone, work):
    case_id, code = opened["id"], opened["code"]
    r = town.post(f"/api/v1/cases/{case_id}/assign", {"phone": "139 1111 2222"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "claimed" and body["claimed_by"] == "139****2222"
    assert body["timeline"][-1]["kind"] == "assigned"
    assert body["timeline"][-1]["detail"]["to"] == "139****2222"
    # The outbox row is written with the action; the worker sends it.
    work()
    assert gateway.to(BUREAU) and f"#{code}" in gateway.to(BUREAU)[-1]
    bureau = phone(BUREAU)
    bureau.text(f"{code} 收到")
    assert "已由您签收" in bureau.last()
    bureau.text(f"{code} 巡逻艇已出发")
    assert gateway.to(RESIDENT)[-1] == f"#{code} 翁山一网格服务团队：巡逻艇已出发"
    phone(RESIDENT).text("谢谢，等着")
    assert bureau.last() == f"#{code} 补充：谢谢，等着"  # follow-ups go to the assignee
    bureau.text("办结 已处理")  # no code: the bureau's only case
    assert town.get(f"/api/v1/cases/{case_id}").json()["status"] == "resolved"
    assert town.post(f"/api/v1/cases/{case_id}/assign", {"phone": "not a phone"}).status_code == (
        422
    )


def test_idempotency_key_replays_the_first_answer(town, opened, gateway, work):
    case_id = opened["id"]
    url = f"/api/v1/cases/{case_id}/comment"
    key = {"Idempotency-Key": "c-1"}
    first = town.post(url, {"body": "一次"}, headers=key)
    again = town.post(url, {"body": "一次"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.json() == first.json()
    timeline = town.get(f"/api/v1/cases/{case_id}").json()["timeline"]
    assert [e["kind"] for e in timeline].count("comment") == 1
    r = town.post(url, {"body": "另一次"}, headers=key)
    assert r.status_code == 422 and r.json()["error"] == "idempotency_key_reused"

    # A message replayed is not sent twice.
    msg = f"/api/v1/cases/{case_id}/message"
    for _ in range(3):
        assert town.post(msg, {"body": "马上到"}, headers={"Idempotency-Key": "m-1"}).is_success
    work()
    assert [b for b in gateway.to(RESIDENT) if "马上到" in b] == [
        f"#{opened['code']} 解放街道：马上到"
    ]

    # A refused action keeps nothing: the same key may be used once it is allowed.
    claim = f"/api/v1/cases/{case_id}/claim"
    town.post(f"/api/v1/cases/{case_id}/resolve", {"note": "x"})
    assert town.post(claim, {}, headers={"Idempotency-Key": "k-9"}).status_code == 409
    assert town.post(claim, {}, headers={"Idempotency-Key": "k-9"}).status_code == 409
    assert town.post(url, {"body": "x"}, headers={"Idempotency-Key": "x" * 201}).status_code == 422


def test_every_refusal_has_one_shape(town, opened):
    url = f"/api/v1/cases/{opened['id']}"
    for r in (
        town.post(f"{url}/assign", {"phone": ""}),
        town.post(f"{url}/assign", {"phone": "13900001111", "extra": 1}),
        town.get("/api/v1/cases", limit=0),
        town.get("/api/v1/stats", **{"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}),
        town.post(f"{url}/transfer", {"grid": "NOPE"}),
    ):
        assert r.status_code == 422
        body = r.json()
        assert set(body) <= {"error", "detail", "errors"} and body["detail"]
    invalid = town.post(f"{url}/assign", {"phone": ""}).json()
    assert invalid["error"] == "invalid_request" and "body.phone" in invalid["detail"]
    assert invalid["errors"][0]["loc"] == ["body", "phone"]
