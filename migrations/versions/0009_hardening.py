"""JWT access tokens per client, a family's sign-in methods on its grant

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, never batch mode: on SQLite a batch would drop and recreate the table,
# and the drop cascades to every row that refers to it.


def upgrade():
    op.add_column("clients", sa.Column("access_token_format", sa.String(length=10), nullable=False,
                                       server_default="opaque"))
    op.add_column("grants", sa.Column("amr", sa.JSON(), nullable=True))


def downgrade():
    op.execute("ALTER TABLE grants DROP COLUMN amr")
    op.execute("ALTER TABLE clients DROP COLUMN access_token_format")
