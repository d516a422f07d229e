"""private_key_jwt: clients' public keys (inline or by URI) and the client assertions seen

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('used_client_assertions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('used_client_assertions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_client_assertions_expires_at'), ['expires_at'], unique=False)
    # Plain ALTER TABLE: a batch would recreate `clients`, cascading to its tokens on SQLite.
    op.add_column('clients', sa.Column('jwks', sa.JSON(), nullable=True))
    op.add_column('clients', sa.Column('jwks_uri', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('jwks_uri')
        batch_op.drop_column('jwks')
    with op.batch_alter_table('used_client_assertions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_client_assertions_expires_at'))
    op.drop_table('used_client_assertions')
