"""Inbound SMS: stored idempotently by the webhook, processed by the worker."""

from __future__ import annotations

import functools
import json
import logging
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnClause,
    Connection,
    Select,
    Table,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from app import memo
from app.cases import changes as cases
from app.cases import lookups as case_lookups
from app.cases.changes import Actor, Ctx
from app.deadlines import ladder
from app.directory import lookups as directory
from app.directory import rosters
from app.errors import Conflict
from app.inbound import guards
from app.inbound.placement import location_of, place, place_answer, resident_of
from app.models.cases import Case
from app.models.directory import Region, Resident
from app.models.messages import InboundMessage
from routing.grammar import (
    Action,
    ResidentIntent,
    WorkerCommand,
    normalize_text,
    parse_resident,
    parse_worker,
)
from routing.policy import policy_snapshot
from sms.phones import mask_phone
from sms.templates import word

log = logging.getLogger("gridline.inbound")

MAX_ADDRESS_ATTEMPTS = 3


def store_inbound(
    session: Session,
    *,
    message_sid: str,
    from_phone: str,
    to_phone: str | None,
    body: str,
    params: dict[str, Any],
    now: datetime,
) -> bool:
    """Insert the message unless its SID is already stored; True if it was new."""
    row = {
        "message_sid": message_sid,
        "from_phone": from_phone,
        "to_phone": to_phone,
        "body": body,
        "params": params,
        "received_at": now,
    }
    return store_many(session, [row])[0]


def store_many(session: Session | Connection, rows: list[dict[str, Any]]) -> list[bool]:
    """Insert messages (dicts of `store_inbound`'s fields, `received_at` for
    `now`) in one statement; per row, True if it was new.

    The unique constraint decides, not a prior SELECT, so two concurrent
    deliveries of one SID store exactly one row; within `rows`, the first of
    a SID is the new one.
    """
    if not rows:
        return []
    table = cast(Table, InboundMessage.__table__)
    bind = session.get_bind() if isinstance(session, Session) else session
    dialect = bind.dialect.name
    if dialect == "postgresql":
        inserted = set(session.execute(_PG_INSERT_MANY, _columns(rows)).scalars())
        return _new_ones(rows, inserted)
    values = [{**row, "status": "received"} for row in rows]
    stmt: Any
    if dialect == "sqlite":
        stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=["message_sid"])
    else:  # pragma: no cover - other dialects are not supported targets
        stmt = insert(table)
    # RETURNING names the rows this statement inserted; rowcount is not
    # reliable for ON CONFLICT DO NOTHING across drivers. With a list of rows
    # SQLAlchemy sends few multi-row INSERTs ("insertmanyvalues"), compiled once.
    inserted = set(session.execute(stmt.returning(table.c.message_sid), values).scalars())
    return _new_ones(rows, inserted)


def _new_ones(rows: list[dict[str, Any]], inserted: set[str]) -> list[bool]:
    created = []
    for row in rows:
        sid = row["message_sid"]
        created.append(sid in inserted)
        inserted.discard(sid)  # a second copy in the same batch is a duplicate
    return created


# PostgreSQL: the rows as one array per column, unnested, in one statement
# whose text never changes with the number of rows. The multi-row VALUES form
# has a text of its own for each batch size, which psycopg, the text past its
# cache's length, parsed again on every commit for its placeholders: with the
# per-row parameters, 132 µs of the web process's CPU a message in commits of
# 16, against 54 µs this way (in-process micro-benchmark). unnest keeps the
# arrays' order, so ids follow arrival as before; a SID twice in one batch is
# stored once (DO NOTHING skips a row the same statement inserted).
_PG_INSERT_MANY = text(
    "INSERT INTO inbound_messages"
    " (message_sid, from_phone, to_phone, body, params, received_at, status)"
    " SELECT sid, sender, receiver, body, CAST(params AS json), received_at, 'received'"
    " FROM unnest(CAST(:sids AS varchar[]), CAST(:senders AS varchar[]),"
    " CAST(:receivers AS varchar[]), CAST(:bodies AS text[]), CAST(:params AS text[]),"
    " CAST(:received AS timestamptz[]))"
    " AS m(sid, sender, receiver, body, params, received_at)"
    " ON CONFLICT (message_sid) DO NOTHING RETURNING message_sid"
)


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    received = []
    for row in rows:
        at: datetime = row["received_at"]
        if at.tzinfo is None:  # as the column type (app/db.py UTCDateTime) refuses it
            raise ValueError("naive datetime given to a UTC column")
        received.append(at.astimezone(UTC))
    return {
        "sids": [row["message_sid"] for row in rows],
        "senders": [row["from_phone"] for row in rows],
        "receivers": [row["to_phone"] for row in rows],
        "bodies": [row["body"] for row in rows],
        "params": [json.dumps(row["params"]) for row in rows],
        "received": received,
    }


def next_unprocessed(session: Session) -> InboundMessage | None:
    """Lease the oldest unprocessed message (skip ones another worker holds)."""
    found = next_batch(session, limit=1)
    return found[0] if found else None


def next_batch(session: Session, *, limit: int) -> list[InboundMessage]:
    """Lock up to `limit` messages to process in this transaction, oldest first:
    each sender's oldest unprocessed one only (so at most one per sender, and a
    sender's messages in order across batches); rows another worker holds are
    skipped on PostgreSQL."""
    return list(session.scalars(_next_batch_query(limit)))


# 'received' written into the SQL, not bound: a partial index serves a plan
# only when the query names its predicate's very value, and psycopg prepares
# a statement run five times, after which PostgreSQL may run it on a generic
# plan, made without the parameters' values.
_WAITING: ColumnClause[str] = literal_column("'received'")


@functools.lru_cache(maxsize=8)
def _next_batch_query(limit: int) -> Select[InboundMessage]:
    # Built once per limit: constructing it cost about as much as running
    # it, on every batch. A statement is immutable; executions share it.
    earlier = aliased(InboundMessage)
    # One sender's messages are processed in order: a message waits while an
    # earlier one from the same phone is unprocessed (or held by another
    # worker). Asked as "is it its sender's oldest waiting message", one probe
    # of ix_inbound_messages_waiting_sender per candidate, rather than as NOT
    # EXISTS (an earlier one): PostgreSQL turns that into an anti-join, which,
    # its statistics taken before a burst, it ran as a nested loop over the
    # whole backlog for every waiting row (app/models/).
    oldest_of_sender = (
        select(func.min(earlier.id))
        .where(earlier.from_phone == InboundMessage.from_phone, earlier.status == _WAITING)
        .scalar_subquery()
    )
    return (
        select(InboundMessage)
        .where(InboundMessage.status == _WAITING, InboundMessage.id == oldest_of_sender)
        .order_by(InboundMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def prefetch(ctx: Ctx, messages: list[InboundMessage]) -> None:
    """Load what a batch of messages will ask for, a few queries for all of them,
    into the transaction's memo (`app.memo`): the senders as residents (their
    home grids' rosters, whether they have a live case), as members and as
    participants, and the loop guards' counts. Writers in the batch keep these
    in step (a new resident, case or participant); members and rosters are not
    written by messages."""
    session = ctx.session
    phones = sorted({m.from_phone for m in messages})
    held = memo.enable(session)
    residents = {
        r.phone: r for r in session.scalars(select(Resident).where(Resident.phone.in_(phones)))
    }
    for phone in phones:
        held[("resident", phone)] = residents.get(phone)
    # Their homes' teams on duty (offices are asked for only when a case escalates).
    grids = {r.grid.id: r.grid for r in residents.values() if r.grid is not None}
    directory.prefetch_members(session, set(grids))
    rosters.prefetch_on_duty(session, grids.values(), now=ctx.now, tz=ctx.rt.settings.tz)
    directory.prefetch_members_by_phone(session, set(phones))
    case_lookups.prefetch_participant_phones(session, set(phones))
    case_lookups.prefetch_live_cases(session, set(phones))
    guards.prefetch(ctx, messages)


def process(ctx: Ctx, message: InboundMessage) -> None:
    """Act on one stored message; the caller commits (or rolls back) it all."""
    ctx.inbound_id = message.id
    if guards.flooded(ctx, message):  # stored, marked throttled, not acted on
        return
    sender = message.from_phone
    is_worker = bool(directory.members_by_phone(ctx.session, sender)) or bool(
        case_lookups.cases_of_participant(ctx.session, sender)
    )
    if is_worker:
        case = handle_worker(ctx, sender, message.body)
    else:
        case = handle_resident(ctx, sender, message.body)
    message.case_id = case.id if case is not None else None
    message.status = "processed"
    message.processed_at = ctx.now


# ---------------------------------------------------------------- residents


def _resident(session: Session, phone: str) -> Resident | None:
    return resident_of(session, phone)


def _new_resident(session: Session, phone: str) -> Resident:
    resident = Resident(phone=phone, tags="")
    session.add(resident)
    held = memo.table_of(session)
    if held is not None:
        held[("resident", phone)] = resident  # what `resident_of` answers from now on
    return resident


def handle_resident(ctx: Ctx, phone: str, body: str) -> Case | None:
    parsed = parse_resident(body)
    session = ctx.session
    if parsed.intent in (ResidentIntent.STOP, ResidentIntent.START):
        resident = _resident(session, phone)
        if resident is None:
            resident = _new_resident(session, phone)
        resident.opted_out = parsed.intent is ResidentIntent.STOP
        ctx.send(None, phone, "opted_out" if resident.opted_out else "opted_in")
        return None
    if parsed.intent is ResidentIntent.HELP:
        ctx.send(None, phone, "help_resident")
        return None
    if parsed.intent in (ResidentIntent.SATISFIED, ResidentIntent.NOT_SATISFIED):
        resolved = case_lookups.lock(
            session, case_lookups.resolved_case_of_resident(session, phone)
        )
        if resolved is not None and resolved.status == "resolved":
            actor = Actor.sms(phone)
            if parsed.intent is ResidentIntent.SATISFIED:
                cases.close(ctx, resolved, actor, rating=1)
                ctx.send(resolved, phone, "rated_thanks", code=resolved.code)
            else:
                # "不满意，还没修好": the words after the rating tell the team why.
                comment = parsed.text if parsed.text.strip() not in ("2", "２") else ""
                ladder.not_satisfied(ctx, resolved, actor, comment=comment)
            return resolved
    # Keep the resident's own words (full-width punctuation and all) for people.
    text = body.strip() or parsed.text
    active = case_lookups.lock(session, case_lookups.active_case_of_resident(session, phone))
    if active is not None and active.status == "awaiting_address":
        return _try_address(ctx, active, text)
    if active is not None:
        return _append(ctx, active, text)
    return open_case(ctx, phone, text)


def open_case(ctx: Ctx, phone: str, text: str) -> Case:
    session = ctx.session
    resident = _resident(session, phone)
    policies = ctx.rt.policies
    category = policies.categorize(text)
    tags = resident.tags.split(";") if resident is not None and resident.tags else []
    policy = policies.choose(text, tags=tags, category=category)
    case = Case(
        code="",
        status="awaiting_address",
        level="grid",
        priority=policy.name,
        policy_snapshot=policy_snapshot(policy),
        category=category,
        resident_phone=phone,
        resident_id=resident.id if resident else None,
        summary=text,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(case)
    cases.assign_code(session, case)
    actor = Actor.sms(phone)
    cases.record(ctx, case, "received", actor, text=text, priority=policy.name)
    location = location_of(session, ctx.inbound_id)
    placement = place(session, ctx.rt, phone=phone, text=text, location=location)
    if placement.grid is not None:
        cases.route(
            ctx,
            case,
            placement.grid,
            method=placement.method,
            evidence=placement.evidence,
            text=text,
        )
    else:
        case.routing_method = "asked"
        case.routing_evidence = {"method": "asked", **placement.evidence}
        case.address_attempts = 1
        cases.record(ctx, case, "address_requested", Actor.system(), reason=placement.summary)
        template, params = placement.question(ctx.locale)
        ctx.send(case, phone, template, **params)
    return case


def _try_address(ctx: Ctx, case: Case, text: str) -> Case:
    """The resident's answer to "where do you live?": route when it places them."""
    session = ctx.session
    cases.record(ctx, case, "message", Actor.sms(case.resident_phone), text=text)
    placement = place_answer(
        session,
        ctx.rt,
        phone=case.resident_phone,
        answer=text,
        asked=case.routing_evidence,
        summary=case.summary,
        location=location_of(session, ctx.inbound_id),
    )
    if placement.grid is not None and placement.method in ("address", "location"):
        if placement.method == "address":
            remember = str(placement.evidence.get("remember") or text)
            _remember_address(ctx, case.resident_phone, remember, placement.grid)
            case.resident_id = _resident(session, case.resident_phone).id  # type: ignore[union-attr]
        cases.route(
            ctx,
            case,
            placement.grid,
            method="asked",
            evidence={**placement.evidence, "answer": text},
            text=case.summary,
        )
        return case
    case.address_attempts += 1
    cases.record(
        ctx,
        case,
        "address_requested",
        Actor.system(),
        reason=placement.summary,
        attempt=case.address_attempts,
    )
    if placement.method == "ask":  # the answer is a place of several grids: ask which
        case.routing_evidence = {"method": "asked", **placement.evidence}
        template, params = placement.question(ctx.locale)
        ctx.send(case, case.resident_phone, template, **params)
    else:
        ctx.send(case, case.resident_phone, "ask_address_again")
    return case


def _remember_address(ctx: Ctx, phone: str, address: str, grid: Region) -> None:
    resident = _resident(ctx.session, phone)
    if resident is None:
        resident = _new_resident(ctx.session, phone)
    resident.address = address
    resident.grid = grid
    resident.grid_id = grid.id
    resident.address_source = "sms"
    resident.address_confirmed_at = ctx.now
    ctx.session.flush()


def _append(ctx: Ctx, case: Case, text: str) -> Case:
    cases.record(ctx, case, "message", Actor.sms(case.resident_phone), text=text)
    for phone in cases.current_handlers(ctx, case):
        ctx.send(case, phone, "forward_append", code=case.code, text=text)
    ctx.send(case, case.resident_phone, "ack_append", code=case.code)
    return case


# ---------------------------------------------------------------- team members


def _reply(ctx: Ctx, to: str, template: str, case: Case | None = None, **params: Any) -> None:
    ctx.send(case, to, template, **params)


def _target_case(ctx: Ctx, sender: str, cmd: WorkerCommand) -> tuple[Case | None, WorkerCommand]:
    """Find the case a command is about; may turn a bare number into plain text."""
    session = ctx.session
    if cmd.code is not None:
        case = case_lookups.live_case_by_code(session, cmd.code)
        if case is not None and (cmd.explicit_code or _may_act(session, case, sender)):
            return case, cmd
        if cmd.explicit_code:
            _reply(ctx, sender, "unknown_code", code=cmd.code)
            return None, cmd
        # "2024年…": not a code after all; the whole text applies to the only case.
        if cmd.action is Action.RELAY:
            cmd = WorkerCommand(Action.RELAY, arg=cmd.text, text=cmd.text)
    mine = case_lookups.cases_of_participant(session, sender)
    if not mine:
        _reply(ctx, sender, "no_open_case")
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
        rosters.answer_duty(ctx, sender)
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
                    name = cases.display_name(session, case.claimed_by or "", locale)
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
            cases.transfer(ctx, case, actor, grid=grid)
        else:
            if not cmd.arg:
                _reply(ctx, sender, "need_text", case)
                return case
            cases.relay(ctx, case, actor, text=original_suffix(body, cmd.arg))
    except Conflict:
        status = word(f"status.{case.status}", locale)
        _reply(ctx, sender, "not_allowed", case, code=case.code, status=status, action=action_word)
    log.info("%s: %s on #%s", mask_phone(sender), cmd.action.value, case.code)
    return case
