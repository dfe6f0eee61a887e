"""typed host and burst data: a given-up slot is a column, a halted burst says why,
at most one live burst per event (a partial unique index on both stores), and the
store's identity (tagged on every instance it launches)

Revision ID: 0005_typed_hosts
Revises: 0004_burst_driver
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005_typed_hosts"
down_revision = "0004_burst_driver"
branch_labels = None
depends_on = None

LIVE = sa.text("status != 'down'")


def upgrade() -> None:
    with op.batch_alter_table("host", schema=None) as batch_op:
        batch_op.add_column(sa.Column("given_up", sa.Boolean(), nullable=False, server_default=sa.false()))
    # before this revision a given-up slot was the suffix of its last host's error
    op.execute(sa.text("UPDATE host SET given_up = :yes WHERE error LIKE '%slot given up'").bindparams(yes=True))
    with op.batch_alter_table("burst", schema=None) as batch_op:
        batch_op.add_column(sa.Column("halted", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.create_index("uq_burst_live_event", "burst", ["event"], unique=True, sqlite_where=LIVE,
                    postgresql_where=LIVE)
    identity = op.create_table(
        "store_identity",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(identity, [{"id": uuid.uuid4().hex[:16], "created_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("store_identity")
    op.drop_index("uq_burst_live_event", table_name="burst")
    with op.batch_alter_table("burst", schema=None) as batch_op:
        batch_op.drop_column("halted")
    with op.batch_alter_table("host", schema=None) as batch_op:
        batch_op.drop_column("given_up")
