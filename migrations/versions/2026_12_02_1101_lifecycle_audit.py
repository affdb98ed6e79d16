"""Connection lifecycle (pause, auto-disable) and the audit trail.

Revision ID: 20261202_lifecycle
Revises: 20261202_table_care
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261202_lifecycle"
down_revision: str | None = "20261202_table_care"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("connections", sa.Column("status_reason", sa.Text(), nullable=True))
    op.add_column("connections", sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "connections",
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_tenant_created", "audit_events", ["tenant_id", "created_at"])
    op.create_index("ix_audit_events_tenant_target", "audit_events", ["tenant_id", "target_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_tenant_target", table_name="audit_events")
    op.drop_index("ix_audit_events_tenant_created", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_column("connections", "consecutive_failures")
    op.drop_column("connections", "paused_at")
    op.drop_column("connections", "status_reason")
