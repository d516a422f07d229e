"""Clients: a home page (client_uri) and names per language (client_name#nl)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE: a batch would recreate `clients`, cascading to its tokens on SQLite.
    op.add_column('clients', sa.Column('client_uri', sa.String(length=500), nullable=True))
    op.add_column('clients', sa.Column('localized_names', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('localized_names')
        batch_op.drop_column('client_uri')
