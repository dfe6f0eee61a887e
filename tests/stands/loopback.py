"""A server on 127.0.0.1 run in a background thread: the stand-ins' common lifecycle."""

from __future__ import annotations

import threading
from typing import Any


class LoopbackServer:
    """Subclasses build their server in `start()` and hand it to `_serve`; `stop()`
    (or leaving the `with` block) releases any held reply and shuts it down."""

    def __init__(self) -> None:
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._released = threading.Event()  # set on stop/reset: held replies go out at once

    def _serve(self, server: Any, name: str):
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        self._thread.start()
        return self

    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
