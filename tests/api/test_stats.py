"""`GET /api/v1/stats`: counts, rates, times to claim and resolve, overdue, groups."""

from __future__ import annotations

from datetime import UTC, datetime

from app.api.stats import percentile
from tests.api.conftest import HN_RESIDENT, PT_RESIDENT, Api
from tests.factories import RESIDENT, STRANGER, WORKER_A


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 90) == 5.0
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile(list(range(1, 11)), 100) == 10


def test_stats_for_a_county_grouped_by_town(client, make_key, phone, clock, work, categories):
    county = Api(client, make_key("DH"))
    resident, worker = phone(RESIDENT), phone(WORKER_A)
    # Case 1 (DH-JF): claimed after 10 min by SMS, resolved after 40, rated satisfied.
    resident.text("楼道灯坏了")
    code = county.get("/api/v1/cases").json()["items"][0]["code"]
    clock.advance(minutes=10)
    worker.text(f"{code} 收到")
    clock.advance(minutes=30)
    worker.text(f"{code} 办结 好了")
    resident.text("1")
    # Case 2 (DH-HN): assigned through the API after 20 min, still open past its deadline.
    phone(HN_RESIDENT).text("路灯不亮")
    hn_id = county.get("/api/v1/cases", town="DH-HN").json()["items"][0]["id"]
    clock.advance(minutes=20)
    county.post(f"/api/v1/cases/{hn_id}/assign", {"phone": "13911112222"})
    # Elsewhere: a PT case and an unplaced one, neither in DH's figures.
    phone(PT_RESIDENT).text("码头护栏松了")  # category safety
    phone(STRANGER).text("有事")
    clock.advance(hours=80)  # past the 72 h resolution deadline of case 2

    r = county.get(
        "/api/v1/stats",
        **{"from": "2026-11-25T00:00:00+00:00", "to": "2026-12-31T00:00:00Z", "group_by": "town"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    total = body["total"]
    assert body["from"].startswith("2026-11-25T00:00:00") and body["group_by"] == "town"
    assert total["cases"] == 2 and total["solved"] == 1 and total["resolution_rate"] == 0.5
    assert total["by_status"]["closed"] == 1 and total["by_status"]["claimed"] == 1
    assert total["by_level"] == {"grid": 2, "town": 0, "county": 0, "city": 0}
    assert total["rated"] == 1 and total["satisfaction_rate"] == 1.0
    assert total["overdue"] == 1
    assert total["time_to_claim"] == {"count": 2, "median_seconds": 600.0, "p90_seconds": 1200.0}
    assert total["time_to_resolve"]["median_seconds"] == 2400.0
    assert [g["key"] for g in body["groups"]] == ["DH-HN", "DH-JF"]
    assert [g["cases"] for g in body["groups"]] == [1, 1]

    city = Api(client, make_key("CITY")).get("/api/v1/stats", group_by="grid").json()
    assert city["total"]["cases"] == 4
    assert [g["key"] for g in city["groups"]] == ["DH-01", "DH-HN-01", "PT-01", None]
    category = Api(client, make_key("CITY")).get("/api/v1/stats", group_by="category").json()
    assert [(g["key"], g["cases"]) for g in category["groups"]] == [("safety", 1), (None, 3)]


def test_stats_window_and_validation(client, make_key, phone, clock):
    office = Api(client, make_key("DH-JF"))
    phone(RESIDENT).text("楼道灯坏了")
    empty = office.get("/api/v1/stats", to=datetime(2026, 11, 1, tzinfo=UTC).isoformat()).json()
    assert empty["total"]["cases"] == 0 and empty["total"]["resolution_rate"] is None
    clock.advance(minutes=1)
    assert office.get("/api/v1/stats").json()["total"]["cases"] == 1  # the last 30 days
    bad = office.get(
        "/api/v1/stats", **{"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
    )
    assert bad.status_code == 422
    assert office.get("/api/v1/stats", group_by="county").status_code == 422
    assert office.get("/api/v1/stats", to="2026-11-01T00:00:00").status_code == 422
    assert office.get("/api/v1/stats", to="1764036000").status_code == 422
