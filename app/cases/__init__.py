"""Cases: state changes and their timeline.

Every change of a case goes through `changes` (claim, resolve, escalate,
transfer, relay, close …), which writes its timeline event, its outbox rows
and its deadline steps in the caller's transaction. `lookups` reads cases;
`categories` picks who is texted first; `office_actions` are the changes only
offices make. May import `app.directory`, `app.delivery`, `app.models`,
`routing`, `sms`.
"""
