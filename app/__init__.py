"""Gridline's composition layer, laid out along a message's trip
(docs/architecture.md): intake, inbound, cases, delivery, deadlines,
directory, importer, worker, models, with the api, console and cli on top.

May import `routing` and `sms`; neither of those may import `app`.
"""
