"""Tables of the routing engine (issue 3), beside the core models.

Imported at the end of `app.models` so that Alembic sees them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class GridShape(Base):
    """A grid's boundary from `grids.geojson`: a GeoJSON Polygon or MultiPolygon."""

    __tablename__ = "grid_shapes"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), unique=True)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
