"""A file import's error policy (`onError`, budgets) and what it set aside (`recordsRejected`, reasons).

Revision ID: 1401_error_policy
Revises: 20261202_api_keys
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "1401_error_policy"
down_revision: str | None = "20261202_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("files", sa.Column("on_error", sa.String(8), nullable=False, server_default="abort"))
    op.add_column("files", sa.Column("max_error_rows", sa.BigInteger(), nullable=True))
    op.add_column("files", sa.Column("max_error_ratio", sa.Float(), nullable=True))
    op.add_column("files", sa.Column("records_rejected", sa.BigInteger(), nullable=True))
    op.add_column("files", sa.Column("reject_reasons", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    for column in ("reject_reasons", "records_rejected", "max_error_ratio", "max_error_rows", "on_error"):
        op.drop_column("files", column)
