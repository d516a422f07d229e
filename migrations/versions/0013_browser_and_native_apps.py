"""browser and native apps: client origins (CORS), PAR, DPoP bindings and proofs

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 00:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _web_origins(redirect_uris) -> set[str]:
    from idp.redirect_uris import web_origin

    return {o for o in (web_origin(u) for u in redirect_uris or ()) if o}


def upgrade():
    op.create_table('client_origins',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('origin', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('client_id', 'origin')
    )
    with op.batch_alter_table('client_origins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_client_origins_origin'), ['origin'], unique=False)
    op.create_table('pushed_authorization_requests',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pushed_authorization_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pushed_authorization_requests_expires_at'), ['expires_at'], unique=False)
    op.create_table('used_dpop_proofs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('used_dpop_proofs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_dpop_proofs_expires_at'), ['expires_at'], unique=False)
    # Plain ALTER TABLE: a batch would recreate `clients`, cascading to its tokens on SQLite.
    op.add_column('clients', sa.Column('require_par', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('tokens', sa.Column('dpop_jkt', sa.String(length=43), nullable=True))
    op.add_column('authorization_codes', sa.Column('dpop_jkt', sa.String(length=43), nullable=True))

    # Clients registered before keep serving the browser pages of their redirect URIs' origins.
    connection = op.get_bind()
    clients = sa.table('clients', sa.column('id', sa.String), sa.column('redirect_uris', sa.JSON))
    origins = sa.table('client_origins', sa.column('client_id', sa.String), sa.column('origin', sa.String))
    rows = [{"client_id": client_id, "origin": origin}
            for client_id, uris in connection.execute(sa.select(clients.c.id, clients.c.redirect_uris))
            for origin in sorted(_web_origins(uris))]
    if rows:
        op.bulk_insert(origins, rows)


def downgrade():
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_column('dpop_jkt')
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('dpop_jkt')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('require_par')
    with op.batch_alter_table('used_dpop_proofs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_dpop_proofs_expires_at'))
    op.drop_table('used_dpop_proofs')
    with op.batch_alter_table('pushed_authorization_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pushed_authorization_requests_expires_at'))
    op.drop_table('pushed_authorization_requests')
    with op.batch_alter_table('client_origins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_origins_origin'))
    op.drop_table('client_origins')
