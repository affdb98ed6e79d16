"""Read options of an uploaded file (CSV dialect and encoding, workbook sheet, JSON records path).

Revision ID: 20261202_read_options
Revises: 1501_uploads
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261202_read_options"
down_revision: str | None = "1501_uploads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("files", sa.Column("read_options", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("files", "read_options")
