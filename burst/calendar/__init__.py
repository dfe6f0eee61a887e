"""The pre-scaling calendar: events entered ahead of a known peak, their recurrence,
freeze windows, .ics import and export, and the lead time that decides when the
daemon starts an occurrence's burst.

Pure modules (no I/O): model, recurrence, demand, leadtime, ics. The store side:
tables (SQLModel), repo (read and write events and actions).
"""
