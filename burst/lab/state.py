"""The lab's record of itself: one JSON file under the lab's directory.

Everything the lab creates is written here *before* it is created (namespace, veth,
directories) and its PIDs right after, so `down` can remove all of it even after a
crash half way through `up`. Several processes may use one lab at once (the CLI, the
lab provider inside `burst up`, a test): every read-modify-write holds a file lock.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

STATE_FILE = "lab.json"


class LabState:
    def __init__(self, lab_dir: Path):
        self.path = lab_dir / STATE_FILE
        self._lock_path = lab_dir / (STATE_FILE + ".lock")

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> dict[str, Any]:
        with open(self.path) as f:
            return json.load(f)

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """Read, let the caller change, write back atomically; all under the lock.
        Not re-entrant: never nest two `edit()` blocks."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self._lock_path), timeout=60):
            data = self.read() if self.path.exists() else {}
            yield data
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                json.dump(data, f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)

    def remove(self) -> None:
        for p in (self.path, self._lock_path, self.path.with_suffix(".tmp")):
            p.unlink(missing_ok=True)
