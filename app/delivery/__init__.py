"""Delivery: everything that leaves Gridline.

The durable outbox (`outbox`: rows written with the change that caused them,
sent by the worker with leases, retries and a shared send rate), the gateway
it sends through (`gateways`), quiet hours (`quiet`), delivery status
callbacks (`status`) and signed webhooks to office systems
(`office_webhooks`). May import `app.models`, `app.db`, `app.runtime`,
`sms`; nothing of `app.inbound`, `app.cases` or `app.deadlines`.
"""
