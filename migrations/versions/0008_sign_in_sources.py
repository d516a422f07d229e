"""sign-in sources: the smart lockout counts failed passwords per (address, source)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sign_in_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address_hash", "source_hash"),
    )
    with op.batch_alter_table("sign_in_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_sources_address_hash"), ["address_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_sign_in_sources_last_failed_at"), ["last_failed_at"], unique=False)


def downgrade():
    with op.batch_alter_table("sign_in_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_sources_last_failed_at"))
        batch_op.drop_index(batch_op.f("ix_sign_in_sources_address_hash"))
    op.drop_table("sign_in_sources")
