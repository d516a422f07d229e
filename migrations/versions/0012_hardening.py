"""JWT access tokens per client, a family's sign-in methods on its grant, connector users
counted by source (their own lockout counters go), indexes for every hot query

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


CONNECTOR_LOCKOUT_COLUMNS = ("failed_attempts", "first_failed_at", "locked_until", "lockouts")
# (name, table, what) of the new indexes; the trigram ones (support's substring search) on PostgreSQL only.
INDEXES = [
    ("ix_accounts_email_lower", "accounts", "(lower(email))"),
    ("ix_authorization_codes_session_id", "authorization_codes", "(session_id)"),
    ("ix_accounts_email_trgm", "accounts", "USING gin (lower(email) gin_trgm_ops)"),
    ("ix_accounts_name_trgm", "accounts", "USING gin (lower(name) gin_trgm_ops)"),
    ("ix_connector_users_username_trgm", "connector_users", "USING gin (lower(username) gin_trgm_ops)"),
]

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
    if op.get_bind().dialect.name != "postgresql":
        op.create_index("ix_accounts_email_lower", "accounts", [sa.text("lower(email)")])
        op.create_index("ix_authorization_codes_session_id", "authorization_codes", ["session_id"])
        return
    # pg_trgm is a trusted extension: the database's owner may create it. The indexes are built
    # CONCURRENTLY, so a large deployment keeps signing people in while they are made.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.get_context().autocommit_block():
        for name, table, expression in INDEXES:
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} {expression}")


def downgrade():
    for name, _table, _expression in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.add_column("connector_users", sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("connector_users", sa.Column("first_failed_at", sa.DateTime(), nullable=True))
    op.add_column("connector_users", sa.Column("locked_until", sa.DateTime(), nullable=True))
    op.add_column("connector_users", sa.Column("lockouts", sa.Integer(), nullable=False, server_default="0"))
    op.execute("ALTER TABLE grants DROP COLUMN amr")
    op.execute("ALTER TABLE clients DROP COLUMN access_token_format")
