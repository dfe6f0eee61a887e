"""Imports every module that defines tables, so the metadata is complete."""

from burst.store.models import Burst, Host, JournalEntry  # noqa: F401
from burst.calendar.tables import CalendarAction, CalendarEventRow, NotificationSent  # noqa: F401
from burst.pool.tables import PoolHost, PoolLease, PoolLending, PoolUnit  # noqa: F401
