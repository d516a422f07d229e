"""flows without attempts: failed tries are counted where they are decided (lockout, e-mail codes)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ALTER (SQLite >= 3.35 and PostgreSQL): a batch copy of flows would cascade-delete its e-mail codes.
    op.execute("ALTER TABLE flows DROP COLUMN attempts")


def downgrade():
    op.add_column("flows", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
