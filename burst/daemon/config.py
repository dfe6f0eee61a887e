"""The `[daemon]` table of the configuration: `DaemonConfig`, defined with the rest of
the config in `burst.config` (the core never imports the daemon; the daemon imports
the core)."""

from burst.config import DaemonConfig

__all__ = ["DaemonConfig"]
