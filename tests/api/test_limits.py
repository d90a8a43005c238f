"""Limits: requests per key per minute (429 + Retry-After), SMS per office per day."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.factories import RESIDENT


def test_requests_per_key_are_limited_per_minute(client, make_key, city, rt, clock):
    rt.settings = rt.settings.model_copy(update={"api_rate_limit_per_minute": 3})
    clock.advance(seconds=15)  # 02:00:15: 45 s left in this minute
    key, other = make_key("DH"), make_key("DH")
    api = Api(client, key)
    assert [api.get("/api/v1/office").status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get("/api/v1/cases/12345")  # what it asks does not matter
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "45"
    assert refused.json()["error"] == "rate_limited"
    assert Api(client, other).get("/api/v1/office").status_code == 200  # per key
    # Failed requests count too (a key probing ids is limited like any other).
    assert Api(client, other).get("/api/v1/cases/99999").status_code == 404
    assert Api(client, other).get("/api/v1/cases/99999").status_code == 404
    assert Api(client, other).get("/api/v1/office").status_code == 429
    clock.advance(seconds=45)  # the next minute
    assert api.get("/api/v1/office").status_code == 200


def test_sms_through_the_api_count_against_a_daily_office_quota(
    client, make_key, phone, rt, clock, gateway, work
):
    rt.settings = rt.settings.model_copy(update={"api_sms_daily_quota": 2})
    phone(RESIDENT).text("楼道灯坏了")
    town, county = Api(client, make_key("DH-JF")), Api(client, make_key("DH"))
    case_id = town.get("/api/v1/cases").json()["items"][0]["id"]
    url = f"/api/v1/cases/{case_id}"
    assert town.post(f"{url}/message", {"body": "一"}).status_code == 200
    assert town.post(f"{url}/assign", {"phone": "13911112222"}).status_code == 200
    refused = town.post(f"{url}/message", {"body": "三"})
    assert refused.status_code == 429 and refused.json()["error"] == "sms_quota_exceeded"
    # 10:00 in Shanghai: the quota comes back at local midnight, 14 h away.
    assert refused.headers["retry-after"] == str(14 * 3600 + 1)
    assert town.post(f"{url}/comment", {"body": "内部备注"}).status_code == 200  # no SMS
    assert county.post(f"{url}/message", {"body": "区里"}).status_code == 200  # per office
    work()
    texts = gateway.to(RESIDENT)
    assert any("一" in t for t in texts) and not any("三" in t for t in texts)
    timeline = town.get(url).json()["timeline"]
    assert [e["kind"] for e in timeline].count("messaged") == 2  # the refused one left nothing
    clock.advance(hours=14)  # past local midnight
    assert town.post(f"{url}/message", {"body": "新的一天"}).status_code == 200
