"""Every table on one metadata: what Alembic compares the migrations with."""

from __future__ import annotations

from app.models import cases, console, deadlines, directory, messages, offices
from app.models.base import Base

MODULES = (cases, console, deadlines, directory, messages, offices)
metadata = Base.metadata
