"""The errors burst reports to an operator.

Every error an operator can cause or act on is a `BurstError`: the CLI prints its
message on one line and exits 1, never a traceback.
"""


class BurstError(Exception):
    """An error with a message fit for the operator."""


class ConfigError(BurstError):
    """The configuration file is missing or invalid."""


class InputError(BurstError):
    """A command-line argument is invalid."""


class StoreError(BurstError):
    """The state store refused an operation."""


class StaleHostError(StoreError):
    """A host row changed under us (optimistic concurrency): re-read and retry."""


class IllegalTransitionError(StoreError):
    """A host state change that the lifecycle table does not allow."""


class Interrupted(BurstError):
    """The operator pressed Ctrl-C: the message says what is left and how to go on (exit 130)."""
