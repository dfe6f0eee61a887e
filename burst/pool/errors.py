"""Errors of the pool ledger: each is something an operator did, said in one line."""

from burst.errors import BurstError


class PoolError(BurstError):
    """The pool ledger refused an operation; nothing was changed."""


class InventoryError(PoolError):
    """An inventory file could not be read; the message starts with file:line."""


class FreezeWindowError(PoolError):
    """A recall during an event's freeze window, without --force."""
