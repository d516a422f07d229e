"""clients.resource_server: an API that may introspect tokens issued to other clients

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, never batch mode: on SQLite a batch would drop and recreate `clients`,
# and the drop cascades to every client's codes, grants and tokens.


def upgrade():
    op.add_column('clients', sa.Column('resource_server', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('resource_server')
