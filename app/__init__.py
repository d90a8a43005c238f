"""Gridline's composition layer: settings, database, models, services, HTTP, CLI, worker.

May import `routing` and `sms`; neither of those may import `app`.
"""
