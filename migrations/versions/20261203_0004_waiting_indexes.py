"""the waiting messages' partial indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 15:30:00

The worker's next-batch query read `inbound_messages` by status and by
sender; PostgreSQL, with statistics from before a burst, planned it as a
row-by-row self-join of the backlog (quadratic). Two partial indexes over the
waiting rows (status 'received') replace the indexes on status and on
from_phone (lookups by sender use ix_inbound_messages_sender_recent).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WAITING = sa.text("status = 'received'")


def upgrade() -> None:
    op.drop_index("ix_inbound_messages_status", table_name="inbound_messages")
    op.drop_index("ix_inbound_messages_from_phone", table_name="inbound_messages")
    op.create_index(
        "ix_inbound_messages_waiting",
        "inbound_messages",
        ["id"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )
    op.create_index(
        "ix_inbound_messages_waiting_sender",
        "inbound_messages",
        ["from_phone", "id"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_messages_waiting_sender", table_name="inbound_messages")
    op.drop_index("ix_inbound_messages_waiting", table_name="inbound_messages")
    op.create_index("ix_inbound_messages_from_phone", "inbound_messages", ["from_phone"])
    op.create_index("ix_inbound_messages_status", "inbound_messages", ["status"])
