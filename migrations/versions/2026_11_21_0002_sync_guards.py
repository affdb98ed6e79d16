"""One active sync per connection, enforced by the database; connection namespace.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a second trigger racing the first cannot create a second PENDING/RUNNING sync
    op.create_index(
        "uq_syncs_one_active_per_connection",
        "syncs",
        ["connection_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('PENDING', 'RUNNING')"),
    )
    op.create_index("ix_syncs_tenant_started", "syncs", ["tenant_id", "started_at"])
    op.add_column("connections", sa.Column("namespace", sa.String(length=120), nullable=True))


def downgrade() -> None:
    op.drop_column("connections", "namespace")
    op.drop_index("ix_syncs_tenant_started", table_name="syncs")
    op.drop_index("uq_syncs_one_active_per_connection", table_name="syncs")
