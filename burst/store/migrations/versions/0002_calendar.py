"""the pre-scaling calendar: events, performed actions, sent notifications

Revision ID: 0002_calendar
Revises: 0001_initial
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002_calendar"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_str = sqlmodel.sql.sqltypes.AutoString
_time = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "calendar_event",
        sa.Column("name", _str(), nullable=False),
        sa.Column("title", _str(), nullable=False),
        sa.Column("start_local", _str(), nullable=False),
        sa.Column("end_local", _str(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("timezone", _str(), nullable=False),
        sa.Column("demand_json", sa.Text(), nullable=False),
        sa.Column("lead_seconds", sa.Float(), nullable=True),
        sa.Column("rrule", _str(), nullable=True),
        sa.Column("cron", _str(), nullable=True),
        sa.Column("freeze", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("uid", _str(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "calendar_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event", _str(), nullable=False),
        sa.Column("occurrence", _str(), nullable=False),
        sa.Column("action", _str(), nullable=False),
        sa.Column("status", _str(), nullable=False),
        sa.Column("outcome", _str(), nullable=False),
        sa.Column("due_at", _time(), nullable=False),
        sa.Column("ends_at", _time(), nullable=True),
        sa.Column("claimed_at", _time(), nullable=False),
        sa.Column("done_at", _time(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("burst_id", _str(), nullable=True),
        sa.Column("error", _str(), nullable=True),
        sa.Column("daemon", _str(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event", "occurrence", "action"),
    )
    with op.batch_alter_table("calendar_action", schema=None) as batch_op:
        batch_op.create_index("ix_calendar_action_event", ["event"], unique=False)
        batch_op.create_index("ix_calendar_action_occurrence", ["occurrence"], unique=False)
    op.create_table(
        "daemon_notification",
        sa.Column("key", _str(), nullable=False),
        sa.Column("kind", _str(), nullable=False),
        sa.Column("burst_id", _str(), nullable=True),
        sa.Column("claimed_at", _time(), nullable=False),
        sa.Column("status", _str(), nullable=False),
        sa.Column("error", _str(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("daemon_notification")
    with op.batch_alter_table("calendar_action", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_action_occurrence")
        batch_op.drop_index("ix_calendar_action_event")
    op.drop_table("calendar_action")
    op.drop_table("calendar_event")
