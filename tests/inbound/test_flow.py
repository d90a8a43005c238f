"""The SMS loop end to end: resident in, grid team out, replies back.

Each test drives the platform as phones do: a text is stored as the webhook
stores it, the worker runs one pass, and what the gateway was handed is read.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.db import unit_of_work
from app.models.cases import Case, CaseEvent
from app.models.directory import Resident
from tests.factories import (
    COUNTY_OFFICE,
    RESIDENT,
    STRANGER,
    TOWN_OFFICE,
    WORKER_A,
    WORKER_B,
    WORKER_C,
    make_city,
    make_region,
)
from tests.helpers import Phone, latest_case


@pytest.fixture
def city(rt):
    with unit_of_work(rt.sessions) as session:
        make_city(session)


@pytest.fixture
def phones(rt, gateway, city):
    def phone(number: str) -> Phone:
        return Phone(rt, gateway, number)

    return phone


def _case(rt) -> Case:
    with rt.sessions() as s:
        return latest_case(s)


def _events(rt, case_id: int) -> list[str]:
    with rt.sessions() as s:
        return list(
            s.scalars(
                select(CaseEvent.kind).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            )
        )


def _open_case(phones, body: str = "楼道灯坏了") -> Case:
    Phone = phones(RESIDENT)
    Phone.text(body)
    return _case(Phone.rt)


def test_registered_resident_goes_to_grid_on_shift_with_code(rt, phones, gateway):
    resident = phones(RESIDENT)
    resident.text("楼道灯坏了，请帮忙")
    case = _case(rt)
    assert case.status == "open" and case.level == "grid"
    assert case.grid.code == "DH-01" and case.town.code == "DH-JF" and case.county.code == "DH"
    assert case.routing_method == "registered"
    assert re.fullmatch(r"\d{4}", case.code)
    # Wednesday 10:00 local: only worker A is on the day shift.
    assert gateway.to(WORKER_A) == [
        f"#{case.code} 居民陈阿姨(137****0001)：楼道灯坏了，请帮忙（回复“{case.code} 收到”签收）"
    ]
    assert gateway.to(WORKER_B) == []
    ack = resident.last()
    assert f"#{case.code}" in ack and "翁山一网格服务团队" in ack
    assert _events(rt, case.id) == ["received", "routed", "forwarded"]


def test_no_shift_covering_now_falls_back_to_whole_team(rt, phones, gateway, clock):
    clock.advance(hours=12)  # 22:00 local: nobody on shift
    phones(RESIDENT).text("水管爆了")
    assert len(gateway.to(WORKER_A)) == 1
    assert len(gateway.to(WORKER_B)) == 1
    assert gateway.to(WORKER_C) == []


def test_address_in_text_routes_a_stranger(rt, phones, gateway):
    phones(STRANGER).text("人民路12号门口垃圾没人清")
    case = _case(rt)
    assert case.grid.code == "DH-02" and case.routing_method == "address"
    assert case.routing_evidence["entry"] == "人民路12号"
    assert "DH-02" in case.routing_evidence["reason"]
    assert len(gateway.to(WORKER_C)) == 1


def test_unplaced_sender_is_asked_and_the_answer_routes_and_is_remembered(rt, phones, gateway):
    stranger = phones(STRANGER)
    stranger.text("路灯不亮")
    case = _case(rt)
    assert case.status == "awaiting_address" and case.grid is None
    assert "住址" in stranger.last()
    assert gateway.to(WORKER_A) == [] and gateway.to(WORKER_C) == []

    stranger.text("火星基地")  # still not an address we know
    assert _case(rt).status == "awaiting_address"
    assert "未能识别" in stranger.last()

    stranger.text("翁山新村三栋")  # numerals and synonyms normalised
    case = _case(rt)
    assert case.status == "open" and case.grid.code == "DH-01"
    assert case.routing_method == "asked"
    # The forward carries the original request, not the address answer.
    assert "路灯不亮" in gateway.to(WORKER_A)[-1]
    with rt.sessions() as s:
        resident = s.scalar(select(Resident).where(Resident.phone == STRANGER))
        assert resident.grid.code == "DH-01" and resident.address_source == "sms"
        assert resident.address_confirmed_at is not None


def test_an_empty_text_opens_no_case_and_relays_nothing(rt, phones, gateway):
    stranger, resident = phones(STRANGER), phones(RESIDENT)
    stranger.text("  ")
    with rt.sessions() as s:
        assert s.scalars(select(Case)).all() == []
    assert "直接发送您的诉求" in stranger.last()
    resident.text("路灯不亮")
    case = _case(rt)
    before = _events(rt, case.id)
    resident.text("")
    assert _events(rt, case.id) == before  # nothing appended, nothing forwarded
    assert len(gateway.to(WORKER_A)) == 1
    assert "直接发送您的诉求" in resident.last()


def test_a_resident_asks_where_their_case_stands(rt, phones, gateway, clock):
    resident, stranger, a = phones(RESIDENT), phones(STRANGER), phones(WORKER_A)
    stranger.text("查询")
    assert stranger.last() == "您当前没有办理中的诉求，直接发送内容即可反映新问题。"
    resident.text("楼道灯坏了")
    code = _case(rt).code
    forwards = len(gateway.to(WORKER_A))
    resident.text("进度")
    assert resident.last() == (
        f"您的诉求：#{code} 待签收（翁山一网格服务团队，11-25 10:00起）。如需补充，直接回复内容。"
    )
    a.text(f"{code} 收到")
    resident.text("STATUS")
    assert f"#{code} 处理中（翁山一网格服务团队" in resident.last()
    assert len(gateway.to(WORKER_A)) == forwards + 1  # the claim's confirmation only
    case = _case(rt)
    assert "message" not in _events(rt, case.id)  # the question is not added to the case
    with rt.sessions() as s:
        assert len(s.scalars(select(Case)).all()) == 1


def test_claim_relay_resolve_and_rate(rt, phones, gateway):
    resident, a, b = phones(RESIDENT), phones(WORKER_A), phones(WORKER_B)
    resident.text("楼道灯坏了")
    code = _case(rt).code
    a.text(f"#{code} 收到")
    case = _case(rt)
    assert case.status == "claimed" and case.claimed_by == WORKER_A
    assert "已由您签收" in a.last()
    assert "张伟" in resident.last()  # a named answer

    b.text(f"{code} ok")  # B was not sent it, but is on the grid's team
    assert "已由张伟签收" in b.last()
    assert _case(rt).claimed_by == WORKER_A

    a.text(f"{code} 师傅下午三点到")
    relayed = resident.last()
    assert relayed == f"#{code} 翁山一网格服务团队：师傅下午三点到"
    assert "13800000001" not in relayed and "0001" not in relayed

    a.text(f"{code} 办结 已更换灯泡")
    case = _case(rt)
    assert case.status == "resolved"
    assert "已更换灯泡" in resident.last() and "回复1" in resident.last()

    resident.text("1")
    case = _case(rt)
    assert case.status == "closed" and case.rating == 1 and case.open_code is None
    assert "感谢" in resident.last()
    assert _events(rt, case.id)[-4:] == ["claimed", "relayed", "resolved", "closed"]


def test_not_satisfied_reopens_and_tells_the_team(rt, phones, gateway):
    resident, a = phones(RESIDENT), phones(WORKER_A)
    resident.text("噪音扰民")
    code = _case(rt).code
    a.text(f"{code} 收到")
    a.text(f"{code} 办结 已劝导")
    resident.text("2")
    case = _case(rt)
    assert case.status == "open" and case.claimed_by is None and case.level == "grid"
    assert "重新打开" in a.last() and "噪音扰民" in a.last()
    assert "重新办理" in resident.last()
    a.text(f"{code} 收到")
    a.text(f"{code} 办结 再次劝导")
    resident.text("不满意，晚上还是很吵")
    assert _case(rt).status == "open"
    assert "晚上还是很吵" in a.last()


def test_resident_follow_up_goes_to_the_claimant(rt, phones, gateway):
    resident, a = phones(RESIDENT), phones(WORKER_A)
    resident.text("下水道堵了")
    code = _case(rt).code
    a.text(f"{code} 收到")
    resident.text("现在水漫到楼道了")
    assert a.last() == f"#{code} 补充：现在水漫到楼道了"
    with rt.sessions() as s:
        assert len(s.scalars(select(Case)).all()) == 1


def test_text_without_code_goes_only_to_the_one_case_the_member_claimed(rt, phones, gateway):
    resident, stranger, a = phones(RESIDENT), phones(STRANGER), phones(WORKER_A)
    resident.text("第一件事")
    first = _case(rt).code
    a.text("收到")
    assert _case(rt).claimed_by == WORKER_A

    stranger.text("翁山新村3幢 第二件事")
    second = _case(rt).code
    a.text("我马上过去")  # one case claimed by A: it goes there, and only there
    assert resident.last() == gateway.to(RESIDENT)[-1] and "我马上过去" in resident.last()
    assert not any("我马上过去" in body for body in gateway.to(STRANGER))
    assert _case(rt).status == "open"  # the second is not claimed by accident

    a.text(f"{second} 收到")
    a.text("十分钟后到")  # two claimed: which one?
    reply = a.last()
    assert f"#{first}" in reply and f"#{second}" in reply and "未转给居民" in reply
    assert not any("十分钟后到" in body for body in gateway.to(RESIDENT) + gateway.to(STRANGER))


def test_words_without_a_code_never_reach_a_resident_nor_claim_a_case(rt, phones, gateway):
    resident, a = phones(RESIDENT), phones(WORKER_A)
    resident.text("楼道灯坏了")
    code = _case(rt).code
    before = len(gateway.to(RESIDENT))
    for words in ("在吗", "asdf", "巡查：3幢门口有积水"):
        a.text(words)
        assert "未转给居民" in a.last() and f"#{code}" in a.last()
    a.text(f"{code} 师傅下午到")  # with its code, but nobody claimed it yet
    assert "尚未签收" in a.last() and f"“{code} 收到”" in a.last()
    assert len(gateway.to(RESIDENT)) == before
    case = _case(rt)
    assert case.status == "open" and case.claimed_by is None
    assert "claimed" not in _events(rt, case.id) and "relayed" not in _events(rt, case.id)


def test_a_phones_auto_reply_is_relayed_to_nobody(rt, phones, gateway):
    resident, a = phones(RESIDENT), phones(WORKER_A)
    resident.text("楼道灯坏了")
    code = _case(rt).code
    a.text(f"{code} 收到")  # one case claimed: plain words would be relayed
    before = len(gateway.to(RESIDENT))
    autos = ("【自动回复】我正在开车，稍后联系您", "Auto-reply: I'm driving", "正在开会，稍后回复")
    for auto in autos:
        a.text(auto)
        assert "未转给居民" in a.last() and f"“{code} 内容”" in a.last()  # told, not ignored
    assert len(gateway.to(RESIDENT)) == before
    assert "relayed" not in _events(rt, _case(rt).id)
    a.text(f"{code} 师傅正在开会，稍后联系您")  # with its code: the member's own words
    assert resident.last().endswith("师傅正在开会，稍后联系您")


def test_a_members_opt_out_stops_no_duty_and_the_town_is_told(rt, phones, gateway):
    resident, a, town = phones(RESIDENT), phones(WORKER_A), phones(TOWN_OFFICE)
    resident.text("楼道灯坏了")
    code = _case(rt).code
    before = len(gateway.to(RESIDENT))
    a.text("退订")
    assert "值班短信不能退订" in a.last() and "解放街道" in a.last()
    assert town.last() == "张伟回复了“退订”。值班短信照常发送；如需停发，请调整名册或排班。"
    assert len(gateway.to(RESIDENT)) == before  # nothing reached the resident
    with rt.sessions() as s:
        assert s.scalar(select(Resident).where(Resident.phone == WORKER_A)) is None
    phones(STRANGER).text("翁山新村3幢 水管漏水")
    assert "水管漏水" in a.last()  # duty texts go on
    assert _case(rt).code != code
    county = phones(COUNTY_OFFICE)  # nobody else on its duty: nobody to tell
    county.text("TD")
    assert county.last() == "值班短信不能退订，诉求仍会发给您。如需调整，请联系街道。"


def test_bare_number_that_is_not_a_code_is_plain_text(rt, phones, gateway):
    resident, a = phones(RESIDENT), phones(WORKER_A)
    resident.text("物业费问题")
    code = _case(rt).code
    a.text(f"{code} 收到")
    a.text("2024年的账单已查清")
    assert resident.last() == f"#{code} 翁山一网格服务团队：2024年的账单已查清"


def _not_a_live_code(rt, width: int) -> str:
    with rt.sessions() as s:
        live = set(s.scalars(select(Case.open_code).where(Case.open_code.is_not(None))))
    return next(c for c in (str(n) for n in range(10 ** (width - 1), 10**width)) if c not in live)


def test_a_code_that_is_not_the_senders_is_refused_and_touches_no_other_case(rt, phones, gateway):
    resident, a = phones(RESIDENT), phones(WORKER_A)
    resident.text("楼道灯坏了")
    mine = _case(rt).code
    a.text(f"{mine} 收到")
    told = len(resident.inbox())
    wrong = _not_a_live_code(rt, len(mine))

    commands = (f"{wrong} 办结 已修好", f"{wrong} ok", f"{wrong}办结", f"{wrong} 上报 需要执法")
    for command in commands:
        a.text(command)
        assert a.last() == f"未找到办理中的诉求#{wrong}。回复“列表”查看您的诉求。", command
    a.text(f"{wrong} 师傅下午到")  # a relay with a code that is not theirs
    assert f"#{wrong}" in a.last()
    case = _case(rt)
    assert case.status == "claimed" and case.level == "grid" and case.code == mine
    assert len(resident.inbox()) == told  # the resident was told nothing
    assert _events(rt, case.id)[-1] == "claimed"

    # A live case of another grid, named by a worker who is not on it, with
    # a case of their own open: refused, their own case untouched.
    phones(STRANGER).text("人民路12号 路灯坏了")
    theirs = _case(rt)
    assert theirs.grid.code == "DH-02"
    c = phones(WORKER_C)
    c.text(f"{theirs.code} 收到")
    c.text(f"{mine} 办结 已修好")
    assert c.last() == f"您不是诉求#{mine}的办理人员。"
    assert _case(rt).status == "claimed"  # theirs: claimed, not resolved
    with rt.sessions() as s:
        assert s.get(Case, case.id).status == "claimed"


def test_full_width_and_english_commands(rt, phones, gateway):
    resident, a = phones(RESIDENT), phones(WORKER_A)
    resident.text("垃圾桶满了")
    code = _case(rt).code
    full_width = (
        "＃" + code.translate(str.maketrans("0123456789", "０１２３４５６７８９")) + "　收到"
    )
    a.text(full_width)
    assert _case(rt).status == "claimed"
    a.text(f"#{code} DONE emptied")
    assert _case(rt).status == "resolved"


def test_escalate_to_town_texts_the_town_office(rt, phones, gateway):
    resident, a, town = phones(RESIDENT), phones(WORKER_A), phones(TOWN_OFFICE)
    resident.text("违章搭建")
    code = _case(rt).code
    a.text(f"{code} 上报 需要执法")
    case = _case(rt)
    assert case.level == "town" and case.status == "open" and case.claimed_by is None
    assert "需要执法" in town.last() and f"#{code}" in town.last()
    assert "已上报" in a.last()
    assert phones(RESIDENT).last() == f"您的诉求#{code}已上报解放街道办理。"
    town.text(f"{code} 收到")
    assert _case(rt).claimed_by == TOWN_OFFICE


def test_transfer_moves_the_case_to_another_grid(rt, phones, gateway):
    resident, a, c = phones(RESIDENT), phones(WORKER_A), phones(WORKER_C)
    resident.text("人行道破损")
    code = _case(rt).code
    a.text(f"{code} 转 dh-02")
    case = _case(rt)
    assert case.grid.code == "DH-02" and case.status == "open"
    assert f"#{code}" in c.last()
    assert "已转至翁山二网格" in a.last()
    assert phones(RESIDENT).last() == f"您的诉求#{code}已转至翁山二网格服务团队办理。"
    a.text(f"{code} 转 NOPE-9")
    assert "未找到网格" in a.last()


def test_a_member_cannot_transfer_a_case_out_of_its_county(rt, phones, gateway):
    with unit_of_work(rt.sessions) as session:
        county = make_region(session, code="PT", name="普陀区", level="county")
        town = make_region(session, code="PT-SJM", name="沈家门街道", level="town", parent=county)
        make_region(session, code="PT-01", name="沈家门一网格", level="grid", parent=town)
    resident, a = phones(RESIDENT), phones(WORKER_A)
    resident.text("人行道破损")
    code = _case(rt).code
    a.text(f"{code} 转 PT-01")
    case = _case(rt)
    assert case.grid.code == "DH-01" and case.status == "open"
    assert "transferred" not in _events(rt, case.id)
    assert "不在本区县" in a.last() and f"{code} 上报" in a.last()


def test_list_help_unknown_code_and_outsiders(rt, phones, gateway):
    resident, a, c = phones(RESIDENT), phones(WORKER_A), phones(WORKER_C)
    a.text("列表")
    assert "没有办理中" in a.last()
    resident.text("电梯坏了")
    code = _case(rt).code
    a.text("list")
    assert f"#{code}" in a.last() and "待签收" in a.last()
    a.text("帮助")
    assert "收到" in a.last() and "办结" in a.last()
    a.text("#9999 收到" if code != "9999" else "#9998 收到")
    assert "未找到" in a.last()
    c.text(f"#{code} 收到")  # C works in another grid
    assert "不是诉求" in c.last()
    assert _case(rt).status == "open"


def test_stop_and_start_set_opt_out_and_open_no_case(rt, phones, gateway):
    stranger = phones(STRANGER)
    stranger.text("退订")
    with rt.sessions() as s:
        assert s.scalar(select(Resident).where(Resident.phone == STRANGER)).opted_out
        assert s.scalars(select(Case)).all() == []
    assert "已退订" in stranger.last()
    stranger.text("START")
    with rt.sessions() as s:
        assert not s.scalar(select(Resident).where(Resident.phone == STRANGER)).opted_out
    phones(RESIDENT).text("帮助")
    assert "诉求" in phones(RESIDENT).last()


def test_claim_after_resolve_is_refused_politely(rt, phones, gateway):
    resident, a = phones(RESIDENT), phones(WORKER_A)
    resident.text("井盖松动")
    code = _case(rt).code
    a.text(f"{code} 办结 已固定")  # resolving an unclaimed case takes it
    assert _case(rt).claimed_by == WORKER_A
    a.text(f"{code} 收到")
    assert "不能签收" in a.last()


def test_english_locale(rt, phones, gateway, settings):
    rt.settings = settings.model_copy(update={"locale": "en"})
    resident, a = phones(RESIDENT), phones(WORKER_A)
    resident.text("lamp broken")
    code = _case(rt).code
    assert "We got your request" in resident.last()
    a.text(f"{code} ack")
    assert f"#{code} is yours" in a.last()


def test_county_office_gets_escalations_from_town(rt, phones, gateway):
    resident, a, town, county = (
        phones(RESIDENT),
        phones(WORKER_A),
        phones(TOWN_OFFICE),
        phones(COUNTY_OFFICE),
    )
    resident.text("海堤裂缝")
    code = _case(rt).code
    a.text(f"{code} 上报")
    town.text(f"{code} esc 需要区里协调")
    case = _case(rt)
    assert case.level == "county"
    assert "需要区里协调" in county.last()


def test_others_who_were_sent_it_are_told_who_claimed(rt, phones, gateway, clock):
    clock.advance(hours=12)  # night: the whole team gets it
    resident, a, b = phones(RESIDENT), phones(WORKER_A), phones(WORKER_B)
    resident.text("楼上漏水")
    code = _case(rt).code
    assert len(a.inbox()) == len(b.inbox()) == 1
    b.text(f"{code} 收到")
    assert a.last() == f"#{code} 已由李娜签收。"
    a.text(f"{code} 收到")
    assert a.last() == f"#{code} 已由李娜签收，无需重复。"
    assert _case(rt).claimed_by == WORKER_B
