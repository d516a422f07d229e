"""grants: one row per token family, revoked as a whole; access tokens revoked apart

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 23:55:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('grants',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grants_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_grants_client_id'), ['client_id'], unique=False)

    # Every family that exists gets its grant (revoked families stay revoked on their tokens).
    op.execute(
        "INSERT INTO grants (id, client_id, account_id, created_at) "
        "SELECT grant_id, MIN(client_id), MIN(account_id), MIN(created_at) FROM ("
        " SELECT grant_id, client_id, account_id, created_at FROM authorization_codes"
        " UNION ALL SELECT grant_id, client_id, account_id, issued_at FROM tokens"
        ") AS families GROUP BY grant_id"
    )

    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_codes_grant_id'), ['grant_id'], unique=False)
        batch_op.create_foreign_key('fk_authorization_codes_grant_id_grants', 'grants', ['grant_id'], ['id'],
                                    ondelete='CASCADE')
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_revoked_at', sa.DateTime(), nullable=True))
        batch_op.create_foreign_key('fk_tokens_grant_id_grants', 'grants', ['grant_id'], ['id'], ondelete='CASCADE')


def downgrade():
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tokens_grant_id_grants', type_='foreignkey')
        batch_op.drop_column('access_revoked_at')
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_constraint('fk_authorization_codes_grant_id_grants', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_authorization_codes_grant_id'))
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grants_client_id'))
        batch_op.drop_index(batch_op.f('ix_grants_account_id'))
    op.drop_table('grants')
