"""snapshot.indicators: the indicator metadata published with each snapshot

Revision ID: 0003_aggregator
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_aggregator"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("snapshot") as batch:
        batch.add_column(
            sa.Column("indicators", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("snapshot") as batch:
        batch.drop_column("indicators")
