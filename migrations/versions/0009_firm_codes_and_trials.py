"""administrations: firm codes, trials and the company details of a sign-up

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00

"""
import secrets

from alembic import op
import sqlalchemy as sa


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The alphabet of services.administrations.new_firm_code (no 0/O, 1/I): copied, so this
# migration stays what it is when the service changes.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

# Plain ALTER TABLE, never batch mode: on SQLite a batch would drop and recreate
# `administrations`, and the drop cascades to every membership, invitation and connector user.


def upgrade():
    op.add_column("administrations", sa.Column("trial_ends_at", sa.DateTime(), nullable=True))
    op.add_column("administrations", sa.Column("firm_code", sa.String(length=16), nullable=True))
    op.add_column("administrations", sa.Column("kvk_number", sa.String(length=8), nullable=True))
    op.add_column("administrations", sa.Column("address", sa.String(length=300), nullable=True))
    op.add_column("administrations", sa.Column("iban", sa.String(length=34), nullable=True))
    op.create_index(op.f("ix_administrations_firm_code"), "administrations", ["firm_code"], unique=True)
    # Every firm that exists already gets its code.
    administrations = sa.table("administrations", sa.column("id", sa.String), sa.column("kind", sa.String),
                               sa.column("firm_code", sa.String))
    connection = op.get_bind()
    firms = connection.execute(sa.select(administrations.c.id).where(administrations.c.kind == "firm")).scalars().all()
    used: set[str] = set()
    for firm_id in firms:
        code = "".join(secrets.choice(ALPHABET) for _ in range(8))
        while code in used:
            code = "".join(secrets.choice(ALPHABET) for _ in range(8))
        used.add(code)
        connection.execute(sa.update(administrations).where(administrations.c.id == firm_id).values(firm_code=code))


def downgrade():
    op.drop_index(op.f("ix_administrations_firm_code"), table_name="administrations")
    for column in ("iban", "address", "kvk_number", "firm_code", "trial_ends_at"):
        op.drop_column("administrations", column)
