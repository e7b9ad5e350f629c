"""survey_question.logic: a question's section, XLSForm rules (parsed) and labels in every language

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("survey_question") as batch:
        batch.add_column(
            sa.Column("logic", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("survey_question") as batch:
        batch.drop_column("logic")
