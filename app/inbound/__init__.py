"""Inbound: what the worker does with a stored SMS.

Takes each sender's oldest waiting message, tells residents from team
members, places a resident's text in a grid (`placement`, decided by
`routing`), guards against floods and loops (`guards`), and turns the text
into case changes (`app.cases`) and replies (`app.delivery`). May import
`app.cases`, `app.directory`, `app.deadlines.ladder`, `app.delivery`,
`app.models`, `routing`, `sms`.
"""
