"""mail (the transactional mail outbox) and reporting campaigns: invites, reminders sent

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_mail_status_id", "mail", ["status", "id"], unique=False)
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("reminder_days", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_campaign_created_by_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
        sa.UniqueConstraint("year", name=op.f("uq_campaign_year")),
    )
    op.create_table(
        "campaign_invite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.id"], name=op.f("fk_campaign_invite_campaign_id_campaign")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_campaign_invite_member_id_member")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_invite")),
        sa.UniqueConstraint(
            "campaign_id", "member_id", name=op.f("uq_campaign_invite_campaign_id")
        ),
    )
    op.create_table(
        "campaign_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("offset_days", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_campaign_reminder_campaign_id_campaign"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_campaign_reminder_member_id_member")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_reminder")),
        sa.UniqueConstraint(
            "campaign_id",
            "member_id",
            "offset_days",
            name=op.f("uq_campaign_reminder_campaign_id"),
        ),
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_table("campaign_reminder")
    op.drop_table("campaign_invite")
    op.drop_table("campaign")
    op.drop_index("ix_mail_status_id", table_name="mail")
    op.drop_table("mail")
