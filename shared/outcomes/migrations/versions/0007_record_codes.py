"""member.code and facility.code: the natural keys imports name related records by

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    for table in ("member", "facility"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("code", sa.String(40), nullable=True))
            batch.create_index(f"ix_{table}_code", ["code"], unique=True)


def downgrade() -> None:
    """Revert this migration."""
    for table in ("member", "facility"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_code")
            batch.drop_column("code")
