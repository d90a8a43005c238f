"""Intake: the gateway's webhooks, where an SMS enters Gridline.

A signed webhook is checked, its message stored idempotently by `MessageSid`
(or, with the database unreachable, appended to the fsync'd spool), and only
then answered. Delivery status callbacks come in here too and are handed to
`app.delivery`. May import `app.models`, `app.delivery.status`, `app.db`,
`app.runtime`, `app.errors`, `sms`; never `app.inbound` or later stages.
"""
