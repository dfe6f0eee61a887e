"""the shared on-prem pool: units, hosts, lendings, leases

Revision ID: 0003_pool
Revises: 0002_calendar
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003_pool"
down_revision = "0002_calendar"
branch_labels = None
depends_on = None

_str = sqlmodel.sql.sqltypes.AutoString
_time = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "pool_unit",
        sa.Column("name", _str(), nullable=False),
        sa.Column("inventory", _str(), nullable=False),
        sa.Column("imported_at", _time(), nullable=False),
        sa.Column("share", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "pool_host",
        sa.Column("name", _str(), nullable=False),
        sa.Column("unit", _str(), nullable=False),
        sa.Column("address", _str(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("memory_gib", sa.Float(), nullable=False),
        sa.Column("zone", _str(), nullable=False),
        sa.Column("vars_json", sa.Text(), nullable=False),
        sa.Column("lent", sa.Boolean(), nullable=False),
        sa.Column("lease_id", _str(), nullable=True),
        sa.Column("recalled_at", _time(), nullable=True),
        sa.ForeignKeyConstraint(["unit"], ["pool_unit.name"]),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_pool_host_unit", "pool_host", ["unit"])
    op.create_index("ix_pool_host_free", "pool_host", ["lent", "lease_id"])
    op.create_table(
        "pool_lending",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", _str(), nullable=False),
        sa.Column("unit", _str(), nullable=False),
        sa.Column("lent_at", _time(), nullable=False),
        sa.Column("returned_at", _time(), nullable=True),
        sa.Column("ended_by", _str(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pool_lending_host", "pool_lending", ["host"])
    op.create_index("ix_pool_lending_unit", "pool_lending", ["unit"])
    op.create_table(
        "pool_lease",
        sa.Column("id", _str(), nullable=False),
        sa.Column("host", _str(), nullable=False),
        sa.Column("unit", _str(), nullable=False),
        sa.Column("cluster", _str(), nullable=False),
        sa.Column("request_id", _str(), nullable=False),
        sa.Column("instance_type", _str(), nullable=False),
        sa.Column("zone", _str(), nullable=False),
        sa.Column("event", _str(), nullable=True),
        sa.Column("burst_id", _str(), nullable=True),
        sa.Column("tags_json", sa.Text(), nullable=False),
        sa.Column("leased_at", _time(), nullable=False),
        sa.Column("released_at", _time(), nullable=True),
        sa.Column("release_request_id", _str(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pool_lease_host", "pool_lease", ["host"])
    op.create_index("ix_pool_lease_unit", "pool_lease", ["unit"])
    op.create_index("ix_pool_lease_cluster", "pool_lease", ["cluster"])
    op.create_index("ix_pool_lease_request_id", "pool_lease", ["request_id"])
    # at most one open lease per host, enforced by the database itself
    op.create_index("uq_pool_lease_open_host", "pool_lease", ["host"], unique=True,
                    sqlite_where=sa.text("released_at IS NULL"),
                    postgresql_where=sa.text("released_at IS NULL"))


def downgrade() -> None:
    op.drop_table("pool_lease")
    op.drop_table("pool_lending")
    op.drop_table("pool_host")
    op.drop_table("pool_unit")
