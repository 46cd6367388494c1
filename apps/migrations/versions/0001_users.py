"""users: web logins and SIP phone accounts

Revision ID: 0001
Revises:
Create Date: 2024-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("extension", sa.String(length=8), nullable=True),
        sa.Column("web_password_hash", sa.String(length=255), nullable=False),
        sa.Column("sip_ha1_md5", sa.String(length=32), nullable=True),
        sa.Column("sip_ha1_sha256", sa.String(length=64), nullable=True),
        sa.Column("sip_realm", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
        sa.UniqueConstraint("extension", name=op.f("uq_users_extension")),
    )


def downgrade() -> None:
    op.drop_table("users")
