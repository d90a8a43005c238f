"""Alembic migrations; metadata comes from `app.models`."""
