"""reliability

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sender_rates",
        sa.Column("sender", sa.String(length=32), nullable=False),
        sa.Column("tat", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sender", name=op.f("pk_sender_rates")),
    )
    op.create_index(
        "ix_inbound_messages_sender_recent",
        "inbound_messages",
        ["from_phone", "received_at"],
        unique=False,
    )
    # The queue index replaces (status, next_attempt_at): with both, SQLite's
    # planner takes the older one and sorts the whole backlog for every lease.
    op.drop_index("ix_outbound_messages_due", table_name="outbound_messages")
    op.create_index(
        "ix_outbound_messages_queue",
        "outbound_messages",
        ["status", sa.literal_column("priority DESC"), "next_attempt_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_outbound_messages_to_recent",
        "outbound_messages",
        ["to_phone", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_outbound_messages_to_recent", table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_queue", table_name="outbound_messages")
    op.create_index(
        "ix_outbound_messages_due",
        "outbound_messages",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.drop_index("ix_inbound_messages_sender_recent", table_name="inbound_messages")
    op.drop_table("sender_rates")
