"""outbox.year: the reporting year a survey change touched, so a run recomputes that year only

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("year", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("year")
