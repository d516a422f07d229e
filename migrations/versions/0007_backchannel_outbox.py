"""back-channel logout outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:45:00

Follows 0006 (flows without attempts), the last migration on main when it was merged.
"""
from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('backchannel_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_until', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_id', 'session_id')
    )
    with op.batch_alter_table('backchannel_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backchannel_outbox_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_backchannel_outbox_status'), ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('backchannel_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backchannel_outbox_status'))
        batch_op.drop_index(batch_op.f('ix_backchannel_outbox_client_id'))
    op.drop_table('backchannel_outbox')
