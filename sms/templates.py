"""Every SMS text Gridline sends, in Chinese and English, in one place.

Outbox rows keep the template name and its parameters beside the rendered
text, so a provider that only sends pre-approved templates can use them.
Keep the fixed part of each Chinese text well inside one 70-character
segment; `tests/sms/test_templates.py` checks it.
"""

from __future__ import annotations

from string import Formatter
from typing import Any

LOCALES = ("zh", "en")

TEMPLATES: dict[str, dict[str, str]] = {
    "zh": {
        # to residents
        "ack": "已收到您的诉求#{code}，已转{team}办理，请留意短信回复。",
        "ack_append": "已补充到您的诉求#{code}。",
        "ask_address": "您好，请回复您的住址（小区+楼幢、路名+门牌号或村名），以便转给所在网格。",
        "ask_address_again": "未能识别该地址，请写明小区或路名及楼幢门牌号，如“翁山新村3幢”。",
        "ask_choice": "请问您说的是哪一处？{choices}",
        "ask_part": "{place}有多个网格，请回复{part}，如“{example}”。",
        "claimed_resident": "您的诉求#{code}已由{team}{name}受理。",
        "relay_resident": "#{code} {team}：{text}",
        "resolved_resident": "您的诉求#{code}已办结：{note}。满意请回复1，不满意请回复2。",
        "rated_thanks": "感谢您的评价，诉求#{code}已结案。",
        "reopened_resident": "抱歉未能让您满意，诉求#{code}已重新办理。",
        "escalated_resident": "您的诉求#{code}已上报{level}办理。",
        "transferred_resident": "您的诉求#{code}已转至{team}办理。",
        "status_resident": "您的诉求：{items}。如需补充，直接回复内容。",
        "status_none": "您当前没有办理中的诉求，直接发送内容即可反映新问题。",
        "help_resident": (
            "直接发送您的诉求即可，我们会转给您所在网格。办结后回复1满意、2不满意；回复TD退订通知。"
        ),
        "opted_out": "已退订通知，回复“订阅”可恢复。诉求仍可随时发送。",
        "opted_in": "已恢复订阅通知。",
        "slow_down": "您的短信发送过于频繁，后续短信均已记录，工作人员会统一查看，请勿重复发送。",
        # to team members and office duty phones
        "forward": "#{code} {who}：{text}（回复“{code} 收到”签收）",
        "forward_append": "#{code} 补充：{text}",
        "claim_overdue": "#{code} 超时未签收：{text}（回复“{code} 收到”签收）",
        "escalated_notice": "#{code} 上报{level}（{reason}）：{text}（回复“{code} 收到”签收）",
        "assigned_notice": "#{code} 转交您办理：{text}（回复“{code} 收到”签收）",
        "reopened_team": "#{code} 居民不满意，已重新打开：{text}（回复“{code} 收到”签收）",
        "claimed_ok": "#{code} 已由您签收。回复“{code} 内容”答复居民，“{code} 办结 说明”办结。",
        "claimed_notice": "#{code} 已由{name}签收。",
        "already_claimed": "#{code} 已由{name}签收，无需重复。",
        "already_yours": "#{code} 已由您签收。",
        "resolved_ok": "#{code} 已办结，已请居民评价。",
        "escalated_ok": "#{code} 已上报{level}。",
        "transferred_ok": "#{code} 已转至{grid}。",
        "unknown_grid": "未找到网格“{grid}”，请核对网格编码。",
        "transfer_out_of_area": (
            "{grid}不在本区县，不能直接转办。如需跨区县，请回复“{code} 上报 原因”。"
        ),
        "unknown_code": "未找到办理中的诉求#{code}。回复“列表”查看您的诉求。",
        "not_on_case": "您不是诉求#{code}的办理人员。",
        "not_allowed": "诉求#{code}{status}，不能{action}。",
        "no_open_case": "您当前没有办理中的诉求。回复“帮助”查看指令。",
        "several_cases": "您有多件办理中的诉求，请在回复前加编号：{codes}",
        "which_case": "未转给居民：请在内容前加编号，如“{code} 内容”。您办理中的诉求：{codes}",
        "claim_first": "诉求#{code}尚未签收，内容未转给居民。请先回复“{code} 收到”签收后再发。",
        "member_opt_out": "值班短信不能退订，诉求仍会发给您；已告知{unit}。",
        "member_opt_out_alone": "值班短信不能退订，诉求仍会发给您。如需调整，请联系街道。",
        "member_opt_out_office": (
            "{name}回复了“{text}”。值班短信照常发送；如需停发，请调整名册或排班。"
        ),
        "list": "办理中：{items}",
        "help_worker": (
            "指令：编号 收到｜编号 内容(答复居民)｜编号 办结 说明｜"
            "编号 上报 原因｜编号 转 网格码｜列表"
        ),
        "need_text": "请在编号后写上要发给居民的内容。",
        # escalation engine (app/deadlines/ladder.py, app/deadlines/digests.py)
        "resent_top": "#{code} 仍无人签收（{level}）：{text}（回复“{code} 收到”签收）",
        "undelivered_next": "#{code} 原通知未能送达，请您接办：{text}（回复“{code} 收到”签收）",
        "reply_undelivered": (
            "#{code} 您发给居民的短信{outcome}，居民没有收到。请稍后再发，或联系街道值班。"
        ),
        "overdue_digest": "{day}逾期诉求{count}件：{codes}。回复“编号 收到”签收。",
        "duty": "{grid}当前值班：{items}",
        "resolve_reminder": "#{code} 将于{due}到办结时限，请及时办结（回复“{code} 办结 说明”）。",
        "duty_gap": "{grid}当前无人排班，由全体成员负责：{items}",
        "roster_gap": "{day}排班空档（期间由网格全体成员负责）：{items}",
    },
    "en": {
        "ack": "We got your request #{code}. {team} has it; replies come here.",
        "ack_append": "Added to your request #{code}.",
        "ask_address": (
            "Please reply with your address (estate + building, road + number, or village)."
        ),
        "ask_address_again": (
            "Address not recognised. Please give the estate or road and the building or number."
        ),
        "ask_choice": "Which place do you mean? {choices}",
        "ask_part": "{place} spans several grids: please reply with the {part}, e.g. {example}.",
        "claimed_resident": "Your request #{code} is handled by {name} of {team}.",
        "relay_resident": "#{code} {team}: {text}",
        "resolved_resident": "Request #{code} resolved: {note}. Reply 1 if satisfied, 2 if not.",
        "rated_thanks": "Thank you. Request #{code} is closed.",
        "reopened_resident": "Sorry. Request #{code} has been reopened.",
        "escalated_resident": "Request #{code} has gone up to {level}.",
        "transferred_resident": "Request #{code} is now with {team}.",
        "status_resident": "Your requests: {items}. Reply to add details.",
        "status_none": "You have no open request. Text us to report one.",
        "help_resident": (
            "Text your request and we pass it to your grid team. Reply 1/2 to rate, TD to opt out."
        ),
        "opted_out": "You will get no more notices. Reply START to opt back in.",
        "opted_in": "Notices are back on.",
        "slow_down": "You are texting very fast. Every message is kept; the team will read them.",
        "forward": '#{code} from {who}: {text} (reply "{code} ok" to claim)',
        "forward_append": "#{code} more: {text}",
        "claim_overdue": '#{code} not claimed in time: {text} (reply "{code} ok" to claim)',
        "escalated_notice": '#{code} escalated to {level} ({reason}): {text} (reply "{code} ok")',
        "assigned_notice": '#{code} assigned to you: {text} (reply "{code} ok" to claim)',
        "reopened_team": '#{code} reopened, resident not satisfied: {text} (reply "{code} ok")',
        "claimed_ok": (
            '#{code} is yours. "{code} <text>" answers the resident, "{code} done <note>" resolves.'
        ),
        "claimed_notice": "#{code} claimed by {name}.",
        "already_claimed": "#{code} is already claimed by {name}.",
        "already_yours": "#{code} is already yours.",
        "resolved_ok": "#{code} resolved; the resident was asked to rate it.",
        "escalated_ok": "#{code} escalated to {level}.",
        "transferred_ok": "#{code} moved to {grid}.",
        "unknown_grid": 'No grid "{grid}". Check the grid code.',
        "transfer_out_of_area": (
            '{grid} is in another county: no transfer there. Reply "{code} escalate reason".'
        ),
        "unknown_code": 'No open request #{code}. Reply "list" for yours.',
        "not_on_case": "You are not on request #{code}.",
        "not_allowed": "Request #{code} {status}: cannot {action}.",
        "no_open_case": 'You have no open requests. Reply "help" for commands.',
        "several_cases": "You have several open requests; start your reply with one: {codes}",
        "which_case": (
            'Not sent to the resident: put the code first, e.g. "{code} your text". Yours: {codes}'
        ),
        "claim_first": (
            "Request #{code} is not claimed: nothing was sent to the resident. "
            'Reply "{code} ok" first.'
        ),
        "member_opt_out": (
            "Duty texts cannot be stopped; requests still come to you. {unit} is told."
        ),
        "member_opt_out_alone": (
            "Duty texts cannot be stopped; requests still come to you. Ask your town office."
        ),
        "member_opt_out_office": (
            '{name} replied "{text}". Duty texts go on; change the roster to stop them.'
        ),
        "list": "Open: {items}",
        "help_worker": (
            "CODE ok | CODE <text> | CODE done <note> | CODE esc <reason> | CODE move <grid> | list"
        ),
        "need_text": "Write the text for the resident after the code.",
        "resent_top": '#{code} still unclaimed ({level}): {text} (reply "{code} ok" to claim)',
        "undelivered_next": (
            '#{code} could not reach the first contact, please take it: {text} (reply "{code} ok")'
        ),
        "reply_undelivered": (
            "#{code} Your text to the resident {outcome}: they did not get it. "
            "Try again later, or ask the town's duty office."
        ),
        "overdue_digest": '{day}: {count} overdue requests: {codes}. Reply "CODE ok" to claim.',
        "duty": "On duty now in {grid}: {items}",
        "resolve_reminder": '#{code} is due by {due}; please resolve it ("{code} done <note>").',
        "duty_gap": "Nobody is rostered in {grid} now; the whole team covers: {items}",
        "roster_gap": "{day} roster gaps (the whole grid team covers them): {items}",
    },
}

# Words used inside texts, per locale.
WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "level.grid": "网格",
        "level.town": "镇（街道）",
        "level.county": "县（区）",
        "level.city": "市",
        "status.awaiting_address": "待确认地址",
        "status.open": "待签收",
        "status.claimed": "处理中",
        "status.resolved": "已办结",
        "status.closed": "已结案",
        "delivery.failed": "发送失败",
        "delivery.undelivered": "未送达",
        "action.claim": "签收",
        "action.resolve": "办结",
        "action.escalate": "上报",
        "action.transfer": "转办",
        "action.relay": "答复",
        "team": "{grid}服务团队",
        "case_state": "#{code} {status}（{team}，{since}起）",
        "resident": "居民{phone}",
        "resident_named": "居民{name}({phone})",
        "no_reason": "未说明",
        "office": "办公室",
        "sep": "；",
        "part": "（{n}/{total}）",
        "choice": "回复{n} {label}",
        "part.building": "楼幢号",
        "part.number": "门牌号",
        "part.village": "自然村名",
        "part.town": "所在镇（街道）和门牌号",
    },
    "en": {
        "level.grid": "grid",
        "level.town": "town",
        "level.county": "county",
        "level.city": "city",
        "status.awaiting_address": "is awaiting an address",
        "status.open": "is open",
        "status.claimed": "is claimed",
        "status.resolved": "is resolved",
        "status.closed": "is closed",
        "delivery.failed": "could not be sent",
        "delivery.undelivered": "was not delivered",
        "action.claim": "claim",
        "action.resolve": "resolve",
        "action.escalate": "escalate",
        "action.transfer": "move",
        "action.relay": "reply",
        "team": "{grid} team",
        "case_state": "#{code} {status} ({team}, since {since})",
        "resident": "resident {phone}",
        "resident_named": "{name} ({phone})",
        "no_reason": "no reason given",
        "office": "office",
        "sep": "; ",
        "part": "({n}/{total}) ",
        "choice": "reply {n} for {label}",
        "part.building": "building number",
        "part.number": "house number",
        "part.village": "natural village",
        "part.town": "town and house number",
    },
}


class UnknownTemplate(KeyError):
    pass


def render(name: str, locale: str, /, **params: Any) -> str:
    """Render template `name` in `locale` (falling back to `zh`)."""
    table = TEMPLATES.get(locale) or TEMPLATES["zh"]
    try:
        template = table[name]
    except KeyError as exc:
        raise UnknownTemplate(name) from exc
    return template.format(**params)


def word(key: str, locale: str, /, **params: Any) -> str:
    table = WORDS.get(locale) or WORDS["zh"]
    text = table[key]
    return text.format(**params) if params else text


def placeholders(name: str, locale: str = "zh") -> set[str]:
    return {field for _, field, _, _ in Formatter().parse(TEMPLATES[locale][name]) if field}
