"""`burst daemon`: the calendar, the reconcile loop and leak detection under a leader
lock, with /metrics, /healthz and webhook notifications.

config (the [daemon] table), leader (PostgreSQL advisory lock / file lock),
calendar_runner (claims and carries out the calendar's decisions), metrics, webhook,
loop (the `Daemon` that ties them together).
"""
