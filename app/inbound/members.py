"""A team member's (or an office duty phone's) text: the SMS grammar of
`routing.grammar` — claim, resolve, escalate, transfer, relay, list, duty."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from app.cases import changes as cases
from app.cases import lookups as case_lookups
from app.cases import names
from app.context import Actor, Ctx
from app.delivery.send import send
from app.directory import lookups as directory
from app.directory import rosters
from app.errors import Conflict
from app.models.cases import Case
from app.models.directory import Region
from routing.grammar import (
    Action,
    WorkerCommand,
    is_opt_out,
    looks_automatic,
    normalize_text,
    parse_worker,
)
from sms.phones import mask_phone
from sms.templates import word

log = logging.getLogger("gridline.inbound")


def _reply(ctx: Ctx, to: str, template: str, case: Case | None = None, **params: Any) -> None:
    send(ctx, case, to, template, **params)


def _target_case(ctx: Ctx, sender: str, cmd: WorkerCommand) -> tuple[Case | None, WorkerCommand]:
    """Find the case a command is about; may turn a bare number into plain text."""
    session = ctx.session
    if cmd.code is not None:
        case = case_lookups.live_case_by_code(session, cmd.code)
        if case is not None and (cmd.explicit_code or _may_act(session, case, sender)):
            return case, cmd
        if cmd.action is Action.RELAY and cmd.glued:
            # "2024年的账单…": a number, not a code; the whole text applies
            # to the only case.
            cmd = WorkerCommand(Action.RELAY, arg=cmd.text, text=cmd.text)
        else:
            # A code that is not one of the sender's cases is refused: the
            # command never falls on another case ("1700 办结" with #7024 open).
            template = "unknown_code" if case is None else "not_on_case"
            _reply(ctx, sender, template, code=cmd.code)
            return None, cmd
    mine = case_lookups.cases_of_participant(session, sender)
    if not mine:
        _reply(ctx, sender, "no_open_case")
        return None, cmd
    if cmd.action is Action.RELAY:
        # Words without a code reach a resident only on the one case the
        # sender claimed themselves: "在吗" or a patrol note must not be sent
        # to a stranger, nor claim a case by accident.
        # What reads as a phone's auto-reply (自动回复, 正在开车…) is never relayed
        # without a code; the member still gets the answer below, so a person
        # who wrote it is never ignored (the loop guards keep an auto-responder
        # to one answer). With a code the member typed it: it is relayed.
        claimed = [c for c in mine if c.status == "claimed" and c.claimed_by == sender]
        if len(claimed) == 1 and not looks_automatic(cmd.arg):
            return claimed[0], cmd
        codes = " ".join(f"#{c.code}" for c in mine[:8])
        _reply(ctx, sender, "which_case", code=mine[0].code, codes=codes)
        return None, cmd
    if len(mine) > 1:
        codes = " ".join(f"#{c.code}" for c in mine[:8])
        _reply(ctx, sender, "several_cases", codes=codes)
        return None, cmd
    return mine[0], cmd


def _may_act(session: Session, case: Case, phone: str) -> bool:
    if case_lookups.is_participant(session, case, phone):
        return True
    units = {m.unit_id for m in directory.members_by_phone(session, phone)}
    return bool(units & {case.grid_id, case.town_id, case.county_id} - {None})


def original_suffix(body: str, normalized_tail: str) -> str:
    """The end of `body` as the sender typed it, whose normalised form is `normalized_tail`.

    Commands are parsed on normalised text (full-width → half-width); what is
    relayed to a resident should keep the writer's own punctuation.
    """
    for start in range(len(body)):
        if normalize_text(body[start:]) == normalized_tail:
            return body[start:].strip()
    return normalized_tail


def handle_worker(ctx: Ctx, sender: str, body: str) -> Case | None:
    cmd = parse_worker(body)
    locale = ctx.locale
    session = ctx.session
    if cmd.action is Action.HELP:
        _reply(ctx, sender, "help_worker")
        return None
    if cmd.action is Action.LIST:
        mine = case_lookups.cases_of_participant(session, sender)
        if not mine:
            _reply(ctx, sender, "no_open_case")
        else:
            sep = word("sep", locale)
            items = sep.join(
                f"#{c.code} {word('status.' + c.status, locale)} {c.summary[:8]}" for c in mine[:6]
            )
            _reply(ctx, sender, "list", items=items)
        return None
    if cmd.action is Action.DUTY:
        answer_duty(ctx, sender)
        return None

    if cmd.action is Action.RELAY and is_opt_out(cmd.arg):
        _member_opt_out(ctx, sender, cmd.arg)
        return None
    case, cmd = _target_case(ctx, sender, cmd)
    case = case_lookups.lock(session, case)
    if case is None:
        return None
    if not _may_act(session, case, sender):
        _reply(ctx, sender, "not_on_case", code=case.code)
        return case
    actor = Actor.sms(sender)
    action_word = word(f"action.{cmd.action.value}", locale)
    try:
        if cmd.action is Action.CLAIM:
            if case.status == "claimed":
                if case.claimed_by == sender:
                    _reply(ctx, sender, "already_yours", case, code=case.code)
                else:
                    name = names.display_name(session, case.claimed_by or "", locale)
                    _reply(ctx, sender, "already_claimed", case, code=case.code, name=name)
                return case
            if case.status == "open":
                cases.add_participants(ctx, case, [sender], reason="assigned")
            cases.claim(ctx, case, actor)
        elif cmd.action is Action.RESOLVE:
            cases.resolve(ctx, case, actor, note=cmd.arg)
        elif cmd.action is Action.ESCALATE:
            reason = cmd.arg or word("no_reason", locale)
            cases.escalate(ctx, case, actor, reason=reason)
        elif cmd.action is Action.TRANSFER:
            grid = directory.region_by_code(
                session, cmd.arg.strip().upper()
            ) or directory.region_by_code(session, cmd.arg.strip())
            if grid is None or grid.level != "grid":
                _reply(ctx, sender, "unknown_grid", case, grid=cmd.arg)
                return case
            if directory.ancestor_at(grid, "county") != case.county:
                # As the API keeps an office to its area, an SMS transfer stays
                # in the case's county: crossing it is the county office's call.
                _reply(ctx, sender, "transfer_out_of_area", case, code=case.code, grid=grid.name)
                return case
            cases.transfer(ctx, case, actor, grid=grid)
        else:
            if not cmd.arg:
                _reply(ctx, sender, "need_text", case)
                return case
            if case.status == "open":  # claiming is always explicit
                _reply(ctx, sender, "claim_first", case, code=case.code)
                return case
            cases.relay(ctx, case, actor, text=original_suffix(body, cmd.arg))
    except Conflict:
        status = word(f"status.{case.status}", locale)
        _reply(ctx, sender, "not_allowed", case, code=case.code, status=status, action=action_word)
    log.info("%s: %s on #%s", mask_phone(sender), cmd.action.value, case.code)
    return case


def _member_opt_out(ctx: Ctx, sender: str, text: str) -> None:
    """A member's 退订 stops nothing of their duty: they are told so, and the
    office above them (on duty now) is told, which can change the roster."""
    session = ctx.session
    units = [m.unit for m in directory.members_by_phone(session, sender) if m.unit is not None]
    offices: list[Region] = []
    for unit in units:
        office = unit if unit.level in ("town", "county") else directory.ancestor_at(unit, "town")
        if office is not None and office not in offices:
            offices.append(office)
    name = names.display_name(session, sender, ctx.locale)
    told: set[str] = set()
    for office in offices:
        on_duty, _from_roster = rosters.on_duty(session, office, now=ctx.now, tz=ctx.rt.settings.tz)
        for member in on_duty:
            if member.phone != sender and member.phone not in told:
                told.add(member.phone)
                send(ctx, None, member.phone, "member_opt_out_office", name=name, text=text)
    if told:
        _reply(ctx, sender, "member_opt_out", unit=offices[0].name)
    else:  # an outside contact, or an office with nobody else: no one to tell
        _reply(ctx, sender, "member_opt_out_alone")
    log.info("%s: opt-out word from a member; %d office phones told", mask_phone(sender), len(told))


def answer_duty(ctx: Ctx, sender: str) -> None:
    """`值班` / `duty`: who is on duty now in the sender's grid (or office)."""
    units = [m.unit for m in directory.members_by_phone(ctx.session, sender) if m.unit is not None]
    units.sort(key=lambda u: u.level != "grid")  # a grid first, then offices
    if not units:  # an assigned outside contact: no roster of theirs
        send(ctx, None, sender, "help_worker")
        return
    unit = units[0]
    tz = ctx.rt.settings.tz
    members, from_roster = rosters.on_duty(ctx.session, unit, now=ctx.now, tz=tz)
    sep = word("sep", ctx.locale)
    items = sep.join(f"{m.name}{mask_phone(m.phone)}" for m in members[:6])
    template = "duty" if from_roster else "duty_gap"
    send(ctx, None, sender, template, grid=unit.name, items=items)
