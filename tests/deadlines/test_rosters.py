"""Rosters in use: overrides and leave route the forward, the `值班` SMS,
`gridline roster …`, and the daily roster-gap notice to the town office."""

from __future__ import annotations

from datetime import datetime

from typer.testing import CliRunner

from app.cli.main import cli
from app.db import unit_of_work
from app.models.directory import MemberLeave, RosterOverride
from app.runtime import Runtime
from app.worker.loop import run_once
from tests.factories import RESIDENT, TOWN_OFFICE, WORKER_A, WORKER_B, City, make_member
from tests.helpers import Phone

WORKER_D = "+8613800000004"


def _add(rt: Runtime, *rows: object) -> None:
    with unit_of_work(rt.sessions) as session:
        session.add_all(rows)


def test_a_replacement_gets_the_forward_in_place_of_the_rostered_member(
    rt, gateway, city: City, clock
):
    with unit_of_work(rt.sessions) as session:
        make_member(session, phone=WORKER_D, name="赵敏", unit=city.grid1)
    # Wednesday 09:00-12:00 local: D covers A's shift.
    _add(
        rt,
        RosterOverride(
            unit_id=city.grid1.id,
            phone=WORKER_D,
            replaces=WORKER_A,
            starts_at=datetime(2026, 11, 25, 9),
            ends_at=datetime(2026, 11, 25, 12),
            created_at=clock.now,
        ),
    )
    Phone(rt, gateway, RESIDENT).text("楼道灯坏了")  # 10:00 local
    assert gateway.to(WORKER_D) and gateway.to(WORKER_A) == [] and gateway.to(WORKER_B) == []


def test_a_member_on_leave_is_off_the_roster_and_off_the_fallback(rt, gateway, city, clock):
    _add(
        rt,
        MemberLeave(
            phone=WORKER_A,
            starts_at=datetime(2026, 11, 25),
            ends_at=datetime(2026, 11, 26),
            created_at=clock.now,
        ),
    )
    Phone(rt, gateway, RESIDENT).text("电梯异响")
    # Nobody rostered is at work: the whole team but A gets it.
    assert gateway.to(WORKER_A) == [] and gateway.to(WORKER_B)


def test_the_duty_sms_answers_who_is_on_duty_in_the_senders_grid(rt, gateway, city, clock):
    worker = Phone(rt, gateway, WORKER_B)
    worker.text("值班")
    assert worker.last() == "翁山一网格当前值班：张伟138****0001"
    clock.advance(hours=10)  # 20:00 local: no shift
    worker.text("duty")
    assert worker.last().startswith("翁山一网格当前无人排班，由全体成员负责：张伟")
    assert "李娜" in worker.last()


def test_roster_show_override_and_leave_commands(rt, city, db_url):
    env = {"GRIDLINE_DATABASE_URL": db_url, "GRIDLINE_SMS_PROVIDER": "console"}
    runner = CliRunner()
    shown = runner.invoke(cli, ["roster", "show", "DH-01", "--at", "2026-11-25T10:00"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "on duty (roster):" in shown.output
    assert f"张伟  {WORKER_A}  shift" in shown.output
    assert "gaps on 2026-11-25: 00:00-08:00, 18:00-24:00" in shown.output
    night = runner.invoke(cli, ["roster", "show", "DH-01", "--at", "2026-11-25T20:00"], env=env)
    assert "whole team is on duty (fallback)" in night.output and "李娜" in night.output

    args = ["roster", "override", "DH-01", "--phone", "13800000002", "--replaces", WORKER_A]
    args += ["--from", "2026-11-25T09:00", "--to", "2026-11-25T12:00"]
    assert runner.invoke(cli, args, env=env).exit_code == 0
    shown = runner.invoke(cli, ["roster", "show", "DH-01", "--at", "2026-11-25T10:00"], env=env)
    assert f"李娜  {WORKER_B}  replaces {WORKER_A}" in shown.output
    leave = ["roster", "leave", "--phone", WORKER_B, "--from", "2026-11-25", "--to", "2026-11-26"]
    assert runner.invoke(cli, leave, env=env).exit_code == 0
    shown = runner.invoke(cli, ["roster", "show", "DH-01", "--at", "2026-11-25T10:00"], env=env)
    assert f"on leave: {WORKER_B}" in shown.output
    bad = runner.invoke(cli, ["roster", "show", "NOPE"], env=env)
    assert bad.exit_code == 1 and "no unit" in bad.output


def test_the_town_office_gets_the_daily_roster_gap_notice(rt, gateway, city, clock):
    clock.now = clock.now.replace(day=26, hour=0)  # Thursday 08:00 local
    run_once(rt, gateway)
    clock.advance(minutes=10)
    run_once(rt, gateway)
    assert gateway.to(TOWN_OFFICE) == [
        "2026-11-26排班空档（期间由网格全体成员负责）：DH-01 00:00-08:00, 18:00-24:00"
    ]
    clock.advance(days=1)  # Friday 08:10: the next day's notice
    run_once(rt, gateway)
    assert len(gateway.to(TOWN_OFFICE)) == 2
