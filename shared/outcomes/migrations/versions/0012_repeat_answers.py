"""survey_answer.facility_id: the facility a per-facility repeat's answer is about

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("survey_answer") as batch:
        batch.add_column(sa.Column("facility_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_survey_answer_facility_id_facility"), "facility", ["facility_id"], ["id"]
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("survey_answer") as batch:
        batch.drop_constraint(op.f("fk_survey_answer_facility_id_facility"), type_="foreignkey")
        batch.drop_column("facility_id")
