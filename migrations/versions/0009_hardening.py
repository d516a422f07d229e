"""JWT access tokens per client, a family's sign-in methods on its grant, connector users
counted by source (their own lockout counters go)

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


CONNECTOR_LOCKOUT_COLUMNS = ("failed_attempts", "first_failed_at", "locked_until", "lockouts")

# Plain ALTER TABLE, never batch mode: on SQLite a batch would drop and recreate the table,
# and the drop cascades to every row that refers to it.


def upgrade():
    op.add_column("clients", sa.Column("access_token_format", sa.String(length=10), nullable=False,
                                       server_default="opaque"))
    op.add_column("grants", sa.Column("amr", sa.JSON(), nullable=True))
    # Wrong connector passwords lock the source they come from (sign_in_sources); a lock on the
    # connector user itself, "until support" among them, ends here.
    for column in CONNECTOR_LOCKOUT_COLUMNS:
        op.execute(f"ALTER TABLE connector_users DROP COLUMN {column}")


def downgrade():
    op.add_column("connector_users", sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("connector_users", sa.Column("first_failed_at", sa.DateTime(), nullable=True))
    op.add_column("connector_users", sa.Column("locked_until", sa.DateTime(), nullable=True))
    op.add_column("connector_users", sa.Column("lockouts", sa.Integer(), nullable=False, server_default="0"))
    op.execute("ALTER TABLE grants DROP COLUMN amr")
    op.execute("ALTER TABLE clients DROP COLUMN access_token_format")
