"""Table care: undo marks on imports and syncs, connector state per run, table operations, partition specs.

Revision ID: 20261202_table_care
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261202_table_care"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # the connector state this run ended with: a rollback rewinds the connection's state to it
    op.add_column("syncs", sa.Column("state_after", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("syncs", sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("files", sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "files", sa.Column("partition_spec", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "connections", sa.Column("partition_specs", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.create_table(
        "table_operations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("namespace", sa.String(length=128), nullable=False),
        sa.Column("table_name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_table_operations")),
    )
    op.create_index(
        "ix_table_operations_table",
        "table_operations",
        ["tenant_id", "namespace", "table_name", "kind", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_table_operations_table", table_name="table_operations")
    op.drop_table("table_operations")
    op.drop_column("connections", "partition_specs")
    op.drop_column("files", "partition_spec")
    op.drop_column("files", "rolled_back_at")
    op.drop_column("syncs", "rolled_back_at")
    op.drop_column("syncs", "state_after")
