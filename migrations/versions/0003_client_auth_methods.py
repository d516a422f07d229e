"""clients registered without an authentication method keep both secret methods

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:10:00

"""
from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Until now every confidential client was stored as client_secret_basic and accepted
# both secret methods; the column now holds the methods a client may use.
EITHER = "client_secret_basic client_secret_post"


def upgrade():
    op.execute(f"UPDATE clients SET token_endpoint_auth_method = '{EITHER}' "
               "WHERE token_endpoint_auth_method = 'client_secret_basic'")


def downgrade():
    op.execute(f"UPDATE clients SET token_endpoint_auth_method = 'client_secret_basic' "
               f"WHERE token_endpoint_auth_method = '{EITHER}'")
