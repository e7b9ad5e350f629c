"""Disclosure control: members' record keys, the perturbation table, withheld contributors

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "record_key",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_record_key_member_id_member")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_record_key")),
    )
    op.create_table(
        "perturbation",
        sa.Column("cell_key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("factor", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("cell_key", name=op.f("pk_perturbation")),
    )
    with op.batch_alter_table("indicator_value") as batch:
        batch.alter_column("contributors", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    """Revert this migration."""
    op.execute("UPDATE indicator_value SET contributors = 0 WHERE contributors IS NULL")
    with op.batch_alter_table("indicator_value") as batch:
        batch.alter_column("contributors", existing_type=sa.Integer(), nullable=False)
    op.drop_table("perturbation")
    op.drop_table("record_key")
