"""API keys (hashed at rest) and the shared rate-limit buckets.

Revision ID: 20261202_api_keys
Revises: 0201_streams
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261202_api_keys"
down_revision: str | None = "0201_streams"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("permissions", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    # Token buckets shared by every API process. UNLOGGED: no WAL per request; a crash empties it, which
    # only hands every client a full bucket again.
    op.execute(
        "CREATE UNLOGGED TABLE rate_limit_buckets ("
        " key text PRIMARY KEY,"
        " rate double precision NOT NULL,"
        " burst double precision NOT NULL,"
        " tokens double precision NOT NULL,"
        " stamp double precision NOT NULL,"
        " allowed boolean NOT NULL)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE rate_limit_buckets")
    op.drop_index("ix_api_keys_tenant_id", table_name="api_keys")
    op.drop_table("api_keys")
