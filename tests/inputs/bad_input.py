"""What the input tests share: a world (config + a seeded SQLite store), the CLI run
for real in-process (`burst.cli.run`, the same function `burst` runs), a snapshot of
every table, and the one invariant every input class is checked against:

- a valid input is accepted (exit 0);
- a broken one exits non-zero with one line on stderr that names the file, line, key
  or flag, prints no traceback, and leaves every table of the store as it was.

`COUNTS` adds up what the fuzz suites saw; tests/inputs/conftest.py prints it.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
import tempfile
import traceback
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

COUNTS: Counter[str] = Counter()

CONFIG = """\
[cluster]
name = "inputs"
store = "sqlite:///state/burst.db"
state_dir = "state"

[[services]]
name = "web"
cpu = 1.0
memory_gib = 1.0

[[services]]
name = "api"
cpu = 1.0
memory_gib = 1.0

[[tiers]]
name = "pool"
provider = "onprem"
ready_seconds = 10

[[tiers]]
name = "cloud"
provider = "fake"
ready_seconds = 20
[tiers.options]
boot_seconds = 0.1
[[tiers.instance_types]]
name = "fake.large"
cpu = 4
memory_gib = 8
price_per_hour = 0.2
zones = ["zone-a"]

[initialise]
kind = "recording"

[swarm]
kind = "recording"
"""

SEED_INVENTORY = "[web]\nseed-host-1 ansible_host=10.0.0.1 cpu=8 memory_gib=32\n"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    traceback: str | None


def run(*argv: str) -> Result:
    """`burst ARGV...` in this process; an exception that escapes is a traceback."""
    from burst.cli import run as burst_run

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)  # has .buffer, as stdout
    err = io.StringIO()
    tb = None
    code = -1
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = burst_run(list(argv))
        except BaseException:  # noqa: BLE001  whatever escapes is what the invariant forbids
            tb = traceback.format_exc()
    out.flush()
    return Result(code, out.buffer.getvalue().decode("utf-8", "replace"), err.getvalue(), tb)


def snapshot(db: Path) -> dict[str, list]:
    """Every table's rows, sorted: equal snapshots mean an unchanged store."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted((tuple(row) for row in conn.execute(f'SELECT * FROM "{t}"')), key=repr) for t in tables}
    finally:
        conn.close()


class World:
    """A config and a store seeded with one calendar event and one pool unit, made
    once; `fresh()` gives each example its own copy (an SQLite backup)."""

    def __init__(self, root: Path):
        self.root = root
        (root / "burst.toml").write_text(CONFIG)
        (root / "seed.ini").write_text(SEED_INVENTORY)
        start = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
        for argv in (("calendar", "add", "seed", "--start", start, "--duration", "1h", "-r", "web=2"),
                     ("pool", "import", "seedunit", str(root / "seed.ini"))):
            result = run(*argv, "-c", str(root / "burst.toml"))
            assert result.code == 0 and result.traceback is None, result

    @property
    def db(self) -> Path:
        return self.root / "state" / "burst.db"

    def fresh(self) -> "Copy":
        return Copy(self)


class Copy:
    def __init__(self, world: World):
        self.dir = Path(tempfile.mkdtemp(prefix="burst-input-"))
        (self.dir / "state").mkdir()
        shutil.copy(world.root / "burst.toml", self.dir / "burst.toml")
        src = sqlite3.connect(world.db)
        dst = sqlite3.connect(self.dir / "state" / "burst.db")
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        self.config = self.dir / "burst.toml"
        self.db = self.dir / "state" / "burst.db"

    def __enter__(self) -> "Copy":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def check(argv: list[str], db: Path, *, valid: bool | None, names: str, kind: str) -> Result:
    """Run `argv` and check the invariant. `valid` None: either outcome is allowed
    (the strategy does not know), but a rejection must still be a clean one.
    `names`: what the one error line must mention (a file name, a key, a flag)."""
    before = snapshot(db)
    result = run(*argv)
    COUNTS["generated"] += 1
    COUNTS[f"generated {kind}"] += 1
    if result.traceback is not None:
        COUNTS["tracebacks"] += 1
        raise AssertionError(f"burst {' '.join(argv)}: traceback\n{result.traceback}")
    if result.code == 0:
        COUNTS["accepted"] += 1
        assert valid is not False, f"burst {argv!r} accepted a broken input:\n{result.stdout}\n{result.stderr}"
        return result
    COUNTS["rejected"] += 1
    if snapshot(db) != before:
        COUNTS["store changed by a rejected input"] += 1
        raise AssertionError(f"burst {argv!r} was refused but changed the store")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert valid is not True, f"burst {argv!r} refused a valid input: {result.stderr}"
    assert len(lines) == 1, f"not one line: {result.stderr!r}"
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("error: "), lines
    assert names in lines[0], f"{names!r} not named in {lines[0]!r}"
    return result
