"""Webhook notifications: one JSON POST per event, sent from a background thread.

The daemon's loop never waits on the webhook. Each notification has one deadline
for all its attempts (a second attempt only after a connection error, never after
the receiver answered), and the queue is bounded: when the receiver is down,
notifications are dropped with a log line rather than piling up into a storm.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

KINDS = ("event.starting", "sla.at_risk", "burst.ready", "burst.complete", "burst.failed")


class Notifier:
    def __init__(self, url: str | None, *, timeout_seconds: float = 5.0, queue_size: int = 100,
                 on_result: Callable[[str, str, str | None], None] | None = None):
        self.url = url
        self.timeout = timeout_seconds
        self.on_result = on_result
        self._queue: queue.Queue[tuple[str, dict] | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def start(self) -> "Notifier":
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="burst-webhook", daemon=True)
            self._thread.start()
        return self

    def notify(self, key: str, kind: str, payload: Mapping[str, Any]) -> bool:
        """Queue one notification; False when it was dropped (queue full, or no URL)."""
        if not self.enabled:
            return False
        try:
            self._queue.put_nowait((key, {"kind": kind, **payload}))
            return True
        except queue.Full:
            log.warning("webhook queue full: dropped %s", key)
            if self.on_result:
                self.on_result(key, "failed", "dropped: queue full")
            return False

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (within `timeout`), then stop."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout=timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            key, body = item
            error = self.post(body)
            if error:
                log.warning("webhook %s: %s", body.get("kind"), error)
            if self.on_result:
                try:
                    self.on_result(key, "failed" if error else "sent", error)
                except Exception as exc:  # recording the result must not kill the sender
                    log.warning("webhook result of %s not recorded: %s", key, exc)

    def post(self, body: Mapping[str, Any]) -> str | None:
        """POST `body`; None on a 2xx answer, else what went wrong."""
        data = json.dumps(body, sort_keys=True, default=str).encode()
        deadline = time.monotonic() + self.timeout
        error = None
        for attempt in range(2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            request = urllib.request.Request(str(self.url), data=data, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "User-Agent": "burst-daemon"})
            try:
                with urllib.request.urlopen(request, timeout=remaining) as response:
                    response.read(1024)
                    return None
            except urllib.error.HTTPError as exc:
                return f"HTTP {exc.code}"  # the receiver answered: do not retry
            except (urllib.error.URLError, OSError) as exc:
                error = str(getattr(exc, "reason", exc))
                if attempt == 0:
                    time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        return error or "deadline passed"
