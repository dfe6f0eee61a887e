"""the driver lease on a burst

Revision ID: 0004_burst_driver
Revises: 0003_pool
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004_burst_driver"
down_revision = "0003_pool"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("burst", schema=None) as batch_op:
        batch_op.add_column(sa.Column("driver", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("driver_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("burst", schema=None) as batch_op:
        batch_op.drop_column("driver_until")
        batch_op.drop_column("driver")
