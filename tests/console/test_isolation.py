"""A staff member sees exactly what their office's API key would see: every
console route with the session of the office next door is a 404 for a case
(or region) of another area, and the lists leave the other area out."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from sqlalchemy import func, select

from app.models.cases import Case, CaseEvent
from app.models.messages import OutboundMessage
from tests.api.conftest import Api
from tests.factories import RESIDENT

PARAM_RE = re.compile(r"\{(\w+)(?::\w+)?\}")
BODIES = {
    "reveal": {"purpose": "回访居民"},
    "reply": {"body": "x"},
    "note": {"body": "x"},
    "assign": {"phone": "13900001111"},
    "transfer": {"grid": "DH-HN-01"},
    "escalate": {"reason": "x"},
    "misrouted": {"reason": "x"},
    "resolve": {"note": "x"},
    "reopen": {"reason": "x"},
}


def _console_routes(app, method: str) -> list[str]:
    """Every route of the console's router (those of every pages_* module)."""
    from app.console.router import router

    return sorted(
        {
            route.path
            for route in router.routes
            if isinstance(route, APIRoute) and method in route.methods
        }
    )


PROBES = ("unit", "region", "town", "grid", "code", "county")


def _assert_no_leak(text: str, code: str, template: str) -> None:
    assert f"#{code}" not in text and f"{code}," not in text, template
    assert "翁山" not in text and "DH-01" not in text and "解放街道" not in text, template


def _fill(template: str, case_id: int, action: str | None = None) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("case_ref", "case_id", "id"):
            return str(case_id)
        if name == "action":
            return action or "claim"
        return "DH-01"  # a region of the other area: a grid code (or its town's)

    return PARAM_RE.sub(value, template)


def test_every_get_route_with_the_neighbours_session(app, browser, rt, phone, make_key, client):
    phone(RESIDENT).text("楼道灯坏了")  # a case in DH-JF (grid DH-01)
    with rt.sessions() as s:
        case = s.scalar(select(Case))
    assert case is not None
    neighbour = browser("DH-HN", "admin")  # the other town of the same county, every role
    owner = browser("DH-JF", "admin")
    walked = []
    for template in _console_routes(app, "GET"):
        if template in ("/console/login",):
            continue
        path = _fill(template, case.id)
        params = {"code": case.code} if template == "/console/find" else {}
        r = neighbour.get(path, **params)
        if PARAM_RE.search(template) or params:
            assert r.status_code == 404, (template, r.status_code, r.text[:300])
            assert owner.get(path, **params).status_code in (200, 303), template
        else:
            # A page, or a refusal of missing parameters (422): never the other area.
            assert r.status_code in (200, 422), (template, r.status_code, r.text[:300])
            _assert_no_leak(r.text, case.code, template)
            # Naming the other area in the usual parameters changes nothing.
            for name in PROBES:
                probe = neighbour.get(path, **{name: "DH-01"})
                assert probe.status_code in (200, 404, 422), (template, name, probe.status_code)
                _assert_no_leak(probe.text.replace("DH-01", ""), case.code, template)
        walked.append(template)
    assert {"/console", "/console/cases/{case_ref}", "/console/find", "/console/live"} <= set(
        walked
    )
    # The same answer as the API key of the office next door.
    assert Api(client, make_key("DH-HN")).get(f"/api/v1/cases/{case.id}").status_code == 404


def test_every_post_route_with_the_neighbours_session(app, browser, rt, phone, gateway):
    phone(RESIDENT).text("楼道灯坏了")
    with rt.sessions() as s:
        case = s.scalar(select(Case))
        events = s.scalar(select(func.count()).select_from(CaseEvent))
        outbox = s.scalar(select(func.count()).select_from(OutboundMessage))
    assert case is not None
    neighbour = browser("DH-HN", "admin")
    templates = [t for t in _console_routes(app, "POST") if PARAM_RE.search(t)]
    assert templates
    for template in templates:
        actions = [*BODIES, "claim"] if "{action}" in template else [None]
        for action in actions:
            path = _fill(template, case.id, action)
            name = action or path.rsplit("/", 1)[-1]
            r = neighbour.post(path, BODIES.get(name, {}))
            assert r.status_code == 404, (path, r.status_code, r.text[:300])
    r = neighbour.post("/console/bulk", {"action": "claim", "case": str(case.id)})
    assert r.status_code == 200 and "0 / 1" in r.text
    r = neighbour.post("/console/export", {})
    assert r.status_code == 200 and f"{case.code}," not in r.content.decode("utf-8-sig")
    with rt.sessions() as s:
        after = s.get(Case, case.id)
        assert after is not None and after.status == "open" and after.level == "grid"
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == events
        assert s.scalar(select(func.count()).select_from(OutboundMessage)) == outbox


def test_any_other_case_reference_is_a_404(browser, rt, phone):
    phone(RESIDENT).text("楼道灯坏了")
    city = browser("CITY", "viewer")
    for ref in ("999999", "abc", "-1", "1.0", "0x1", "１", "9" * 40, "3000000000", "0"):
        assert city.get(f"/console/cases/{ref}").status_code == 404, ref
