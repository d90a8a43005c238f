"""The worker: the loop that processes stored messages, fires due deadline
steps and sends the outbox, in `gridline worker` or inside `gridline serve`.
May import every domain package; nothing imports it but `app.web` and `app.cli`.
"""
