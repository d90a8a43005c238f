"""Policies: tags and categories, working days, reminders, quiet hours, line-numbered
errors, and a case keeping the policy it started with."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli.main import cli
from app.db import unit_of_work
from app.models.cases import Case, CaseEvent
from app.models.messages import OutboundMessage
from app.runtime import Runtime
from app.worker.loop import run_once
from routing.policy import PolicyError, deadlines_for, parse_policy
from routing.workcal import WorkDays, add_workdays
from tests.conftest import make_settings
from tests.factories import (
    RESIDENT,
    WORKER_A,
    WORKER_B,
    WORKER_C,
    make_city,
    make_member,
    make_resident,
)
from tests.helpers import Phone, latest_case

TZ = ZoneInfo("Asia/Shanghai")
VOLUNTEER = "+8613800000005"

POLICY = """
[policies.normal]
claim_within   = "30m"
escalate_after = "60m"
resolve_within = "3 workdays"
remind_before  = "2h"

[policies.fast]
claim_within   = "10m"
escalate_after = "20m"
resolve_within = "6h"

[[priority]]
policy   = "fast"
keywords = ["着火"]
tags     = ["elderly", "disabled"]
categories = ["safety"]

[categories.health]
keywords = ["发烧", "看病"]
roles    = ["doctor"]

[categories.safety]
keywords = ["小偷", "打架"]
roles    = ["police"]

[quiet_hours]
start = "22:00"
end   = "07:00"
roles = ["volunteer"]
"""


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ).astimezone(UTC)  # type: ignore[misc]


def test_the_file_parses_tags_categories_quiet_hours_and_workdays():
    policies = parse_policy(POLICY)
    assert policies.policies["normal"].resolve_within == WorkDays(3)
    assert policies.categorize("孩子发烧了") == "health"
    assert policies.choose("楼道灯坏了", tags=["elderly"]).name == "fast"
    assert policies.choose("楼道灯坏了", tags=["low_income"]).name == "normal"
    assert policies.choose("有小偷", category=policies.categorize("有小偷")).name == "fast"
    assert policies.quiet is not None and policies.quiet.roles == ("volunteer",)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('"30m"', '"30 minutes"'), r"^line 3: policies\.normal: bad duration '30 minutes'"),
        (('roles    = ["doctor"]', 'role = ["doctor"]'), r"^line 21: categories\.health: unknown"),
        (('end   = "07:00"', 'end   = "7 am"'), r"^line 29: quiet_hours: end must be HH:MM"),
        (('categories = ["safety"]', 'categories = ["fire"]'), r"^line 17: priority rule 1: unk"),
        (('resolve_within = "6h"', 'resolve_within = "6 days off"'), r"^line 11: policies\.fast"),
        (("[quiet_hours]", "[quiet_hours"), r"not valid TOML: .*line 27"),
    ],
)
def test_a_bad_policy_names_the_line_and_the_reason(edit, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(POLICY.replace(*edit, 1))


def test_a_bad_policy_file_is_refused_at_start(tmp_path: Path):
    bad = tmp_path / "policy.toml"
    bad.write_text(POLICY.replace('"60m"', '"an hour"'), encoding="utf-8")
    env = {
        "GRIDLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "GRIDLINE_POLICY_FILE": str(bad),
    }
    result = CliRunner().invoke(cli, ["worker"], env=env)
    assert result.exit_code == 2
    assert "policy error" in result.output and "line 4: policies.normal" in result.output


def test_workdays_skip_public_holidays_and_count_make_up_days():
    # 2026: 1-7 October off; Saturday 10 October is a make-up working day.
    opened = local(2026, 9, 30, 10)
    assert add_workdays(opened, WorkDays(3), tz=TZ) == local(2026, 10, 10, 10)
    # Opened on a Saturday off: counting starts on Monday, due at the end of Monday.
    assert add_workdays(local(2026, 11, 28, 15), WorkDays(1), tz=TZ) == local(2026, 12, 1, 0)
    policy = parse_policy(POLICY).policies["normal"]
    assert deadlines_for(policy, opened_at=opened, tz=TZ).resolve_due_at == local(2026, 10, 10, 10)
    # Any calendar can be passed in (pure core).
    weekdays = add_workdays(opened, WorkDays(3), tz=TZ, is_workday=lambda d: d.weekday() < 5)
    assert weekdays == local(2026, 10, 5, 10)
    assert date(2026, 10, 10).weekday() == 5


@pytest.fixture
def prt(db_url, clock, tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY, encoding="utf-8")
    runtime = Runtime.build(make_settings(db_url, policy_file=path), clock=clock)
    with unit_of_work(runtime.sessions) as session:
        city = make_city(session)
        make_member(session, phone=VOLUNTEER, name="志愿者", unit=city.grid2, role="volunteer")
        make_member(session, phone="+8613800000006", name="民警", unit=city.grid1, role="police")
        make_resident(session, phone="+8613700000003", grid=city.grid1, tags="elderly;low_income")
    try:
        yield runtime
    finally:
        runtime.close()


def _case(rt: Runtime) -> Case:
    with rt.sessions() as s:
        return latest_case(s)


def test_tags_pick_a_faster_policy(prt, gateway, clock):
    Phone(prt, gateway, "+8613700000003").text("水管漏水")
    case = _case(prt)
    assert case.priority == "fast" and case.claim_due_at == clock.now + timedelta(minutes=10)


def test_a_category_texts_its_roles_first_then_the_rest(prt, gateway, clock):
    Phone(prt, gateway, RESIDENT).text("老伴发烧了")  # health: the grid's doctor first
    case = _case(prt)
    assert case.category == "health"
    assert gateway.to(WORKER_B) and gateway.to(WORKER_A) == []  # A is on shift, B the doctor
    clock.advance(minutes=15)  # half the claim window, unclaimed: the rest on duty
    run_once(prt, gateway)
    assert any(f"#{case.code}" in b for b in gateway.to(WORKER_A))
    Phone(prt, gateway, "+8613700000009").text("翁山新村3幢 有小偷")  # safety → police, fast
    case = _case(prt)
    assert (case.category, case.priority) == ("safety", "fast")
    assert any(f"#{case.code}" in b for b in gateway.to("+8613800000006"))


def test_the_claimant_is_reminded_before_the_resolution_deadline(prt, gateway, clock):
    Phone(prt, gateway, RESIDENT).text("楼道灯坏了")  # Wednesday 10:00 → due Monday 10:00
    code = _case(prt).code
    worker = Phone(prt, gateway, WORKER_A)
    worker.text(f"{code} 收到")
    assert _case(prt).resolve_due_at == local(2026, 11, 30, 10)
    clock.now = local(2026, 11, 30, 7, 59)
    run_once(prt, gateway)
    assert not any("办结时限" in b for b in worker.inbox())
    clock.now = local(2026, 11, 30, 8)
    run_once(prt, gateway)
    assert (
        worker.last()
        == f"#{code} 将于11-30 10:00到办结时限，请及时办结（回复“{code} 办结 说明”）。"
    )
    with prt.sessions() as s:
        assert s.scalar(select(CaseEvent).where(CaseEvent.kind == "reminded")) is not None


def test_quiet_hours_hold_non_urgent_notices_to_volunteers(prt, gateway, clock):
    clock.now = local(2026, 11, 25, 23)
    Phone(prt, gateway, "+8613700000011").text("人民路12号 路灯不亮")
    assert gateway.to(WORKER_C) and gateway.to(VOLUNTEER) == []
    with prt.sessions() as s:
        held = s.scalar(select(OutboundMessage).where(OutboundMessage.to_phone == VOLUNTEER))
        assert held.next_attempt_at == local(2026, 11, 26, 7)
    Phone(prt, gateway, "+8613700000012").text("人民路12号 着火了")  # urgent: at once
    assert len(gateway.to(VOLUNTEER)) == 1 and "着火" in gateway.to(VOLUNTEER)[0]
    clock.now = local(2026, 11, 26, 7)
    run_once(prt, gateway)
    forwards = [s.body for s in gateway.sent if s.to == VOLUNTEER and s.template == "forward"]
    assert len(forwards) == 2 and "路灯不亮" in forwards[1]


def test_a_case_keeps_its_policy_when_the_file_changes(prt, gateway, clock, tmp_path):
    Phone(prt, gateway, RESIDENT).text("路面积水")
    code = _case(prt).code
    Phone(prt, gateway, WORKER_A).text(f"{code} 办结 已疏通")
    path = tmp_path / "policy2.toml"
    path.write_text(POLICY.replace('"30m"', '"50m"').replace('"60m"', '"90m"'), encoding="utf-8")
    edited = Runtime.build(make_settings(prt.settings.database_url, policy_file=path), clock=clock)
    try:
        Phone(edited, gateway, RESIDENT).text("不满意")
        # Reopened under the policy it started with: half of 30 minutes, not of 50.
        assert _case(edited).claim_due_at == clock.now + timedelta(minutes=15)
        Phone(edited, gateway, "+8613700000002").text("翁山新村3幢 路灯坏了")
        assert _case(edited).claim_due_at == clock.now + timedelta(minutes=50)
    finally:
        edited.close()
