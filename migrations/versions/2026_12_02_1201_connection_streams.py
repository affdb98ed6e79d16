"""Per-stream choices on a connection (`streams`: syncMode, cursorField, primaryKey per stream).

Revision ID: 0201_streams
Revises: 20261202_webhooks
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0201_streams"
down_revision: str | None = "20261202_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("connections", sa.Column("streams", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("connections", "streams")
