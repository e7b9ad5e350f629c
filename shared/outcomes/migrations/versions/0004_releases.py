"""Builds and releases: release metadata on snapshots, accepted revisions of responses

Revision ID: 0004
Revises: 0003_aggregator
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003_aggregator"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("snapshot") as batch:
        batch.add_column(sa.Column("title", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("notes", sa.String(length=5000), nullable=True))
        batch.add_column(sa.Column("release_number", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("released_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("withdrawn_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("replaced_by", sa.Integer(), nullable=True))
        batch.create_unique_constraint("uq_snapshot_release_number", ["release_number"])
        batch.create_foreign_key(
            "fk_snapshot_released_by_user_account", "user_account", ["released_by"], ["id"]
        )
        batch.create_foreign_key(
            "fk_snapshot_withdrawn_by_user_account", "user_account", ["withdrawn_by"], ["id"]
        )
        batch.create_foreign_key(
            "fk_snapshot_replaced_by_snapshot", "snapshot", ["replaced_by"], ["id"]
        )
    with op.batch_alter_table("survey_response") as batch:
        batch.add_column(sa.Column("accepted_revision", sa.Integer(), nullable=True))
    # Snapshots published before releases existed were public: they become releases.
    op.execute(
        "UPDATE snapshot SET release_number = id, released_at = finished_at, "
        "title = 'Snapshot ' || CAST(id AS VARCHAR(12)) "
        "WHERE status IN ('published', 'withdrawn')"
    )
    op.execute("UPDATE snapshot SET status = 'released' WHERE status = 'published'")
    op.execute(
        "UPDATE survey_response SET accepted_revision = current_revision WHERE status = 'accepted'"
    )


def downgrade() -> None:
    """Revert this migration."""
    op.execute("UPDATE snapshot SET status = 'published' WHERE status IN ('released', 'built')")
    with op.batch_alter_table("survey_response") as batch:
        batch.drop_column("accepted_revision")
    with op.batch_alter_table("snapshot") as batch:
        batch.drop_constraint("fk_snapshot_replaced_by_snapshot", type_="foreignkey")
        batch.drop_constraint("fk_snapshot_withdrawn_by_user_account", type_="foreignkey")
        batch.drop_constraint("fk_snapshot_released_by_user_account", type_="foreignkey")
        batch.drop_constraint("uq_snapshot_release_number", type_="unique")
        for column in (
            "replaced_by",
            "withdrawn_by",
            "withdrawn_at",
            "released_by",
            "released_at",
            "release_number",
            "notes",
            "title",
        ):
            batch.drop_column(column)
