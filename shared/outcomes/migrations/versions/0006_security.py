"""Security: server-side web sessions, one-time passwords, admins, TOTP, throttling, token expiry

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FALSE = sa.text("false")


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "web_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pending_factor", sa.Boolean(), nullable=False, server_default=FALSE),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_web_session_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_session")),
    )
    op.create_index("ix_web_session_user_id", "web_session", ["user_id"])
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=FALSE))
        batch.add_column(
            sa.Column("password_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=FALSE)
        )
        batch.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("recovery_codes", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    # Staff accounts made before admins existed keep managing accounts.
    op.execute("UPDATE user_account SET is_admin = true WHERE role = 'staff'")


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("user_account") as batch:
        for column in (
            "locked_until",
            "failed_logins",
            "recovery_codes",
            "totp_secret",
            "must_change_password",
            "password_expires_at",
            "is_admin",
        ):
            batch.drop_column(column)
    op.drop_index("ix_web_session_user_id", "web_session")
    op.drop_table("web_session")
