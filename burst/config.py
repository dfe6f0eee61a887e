"""The TOML configuration, validated with pydantic.

A bad file gives one line: the file, the line where the key is, the key path and what
was expected. `EXAMPLE` is what `burst init` writes.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from burst.daemon.config import DaemonConfig
from burst.errors import ConfigError

DEFAULT_PATH = "burst.toml"
ENV_VAR = "BURST_CONFIG"

_NAME = r"^[a-z][a-z0-9-]{0,39}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterConfig(_Strict):
    name: str = Field(pattern=_NAME)
    sla_seconds: float = Field(300, gt=0)
    #: SQLAlchemy URL; relative sqlite paths are taken from the config file's folder.
    store: str = "sqlite:///.burst/burst.db"
    #: where providers keep local state (the fake's instance file, lab records).
    state_dir: str = ".burst"
    #: seconds a phase (launch, initialise, join) may take per host before the host
    #: is failed and replaced.
    phase_timeout_seconds: float = Field(240, gt=0)


class ServiceConfig(_Strict):
    name: str = Field(pattern=_NAME)
    cpu: float = Field(gt=0)
    memory_gib: float = Field(gt=0)
    image: str = ""
    #: may extra replicas go to room the cluster's nodes already have (the service
    #: itself grows)? Not for a service that publishes a host-mode port: two of its
    #: tasks cannot share a node. Otherwise every extra replica goes to burst's hosts.
    grow_in_place: bool = False
    #: at most this many replicas on one new host: 1 for a service that publishes a
    #: host-mode port (the swarm places one such task per node)
    max_per_host: int | None = Field(None, ge=1)


class InstanceTypeConfig(_Strict):
    name: str = Field(min_length=1)
    cpu: float = Field(gt=0)
    memory_gib: float = Field(gt=0)
    price_per_hour: float = Field(ge=0)
    zones: list[str] = Field(min_length=1)


class TierConfig(_Strict):
    name: str = Field(pattern=_NAME)
    provider: str = Field(min_length=1)
    #: expected seconds from launch to a host ready in the swarm (p95); the planner
    #: skips a tier that cannot be ready before the deadline.
    ready_seconds: float = Field(120, gt=0)
    max_hosts: int | None = Field(None, ge=0)
    #: at most this many cloud calls or host steps in flight at once for this tier.
    concurrency: int = Field(32, ge=1, le=1000)
    instance_types: list[InstanceTypeConfig] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)


class StepConfig(_Strict):
    """How hosts are initialised or joined: `recording` stand-ins, or the real thing."""

    kind: Literal["recording", "ansible", "swarm"] = "recording"
    options: dict[str, Any] = Field(default_factory=dict)


class Config(_Strict):
    cluster: ClusterConfig
    services: list[ServiceConfig] = Field(min_length=1)
    tiers: list[TierConfig] = Field(min_length=1)
    initialise: StepConfig = StepConfig()
    swarm: StepConfig = StepConfig()
    daemon: DaemonConfig = DaemonConfig()
    #: set by `load_config`: the folder relative paths are taken from.
    base_dir: Path = Path(".")

    @field_validator("services", "tiers")
    @classmethod
    def _unique_names(cls, items: list) -> list:
        seen: set[str] = set()
        for item in items:
            if item.name in seen:
                raise ValueError(f"name {item.name!r} is used twice")
            seen.add(item.name)
        return items

    @model_validator(mode="after")
    def _initialise_kind(self) -> "Config":
        if self.initialise.kind not in ("recording", "ansible"):
            raise ValueError("initialise.kind must be 'recording' or 'ansible'")
        if self.swarm.kind not in ("recording", "swarm"):
            raise ValueError("swarm.kind must be 'recording' or 'swarm'")
        return self

    def service(self, name: str) -> ServiceConfig:
        for s in self.services:
            if s.name == name:
                return s
        raise ConfigError(f"unknown service {name!r} (configured: {', '.join(s.name for s in self.services)})")

    def tier(self, name: str) -> TierConfig:
        for t in self.tiers:
            if t.name == name:
                return t
        raise ConfigError(f"unknown tier {name!r}")

    @property
    def store_url(self) -> str:
        url = self.cluster.store
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str((self.base_dir / url[len(prefix):]).resolve())
        return url

    @property
    def state_dir(self) -> Path:
        return (self.base_dir / self.cluster.state_dir).resolve()


def config_path(explicit: str | Path | None) -> Path:
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the config; any problem is one `ConfigError` line."""
    path = config_path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (write one with `burst init`)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Config.model_validate({**data, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        where = _line_of(text, loc)
        key = _key_path(err["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}{where}: {key}: {_expected(err)}{more}") from None


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _expected(err: dict) -> str:
    msg = err["msg"]
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if "input" in err and err["type"] not in ("model_type",) and not isinstance(err["input"], (dict, list)):
        return f"{msg}, got {err['input']!r}"
    return msg


def _line_of(text: str, loc: list[str]) -> str:
    """The line of the key at `loc`, best effort: TOML parsers keep no positions, so
    walk the table headers (`[[tiers]]` number i, then `[tiers.options]`...) and
    then look for `key =` below the last header found."""
    lines = text.splitlines()
    start, found, prefix = 0, 0, ""
    i = 0
    while i < len(loc):
        name = loc[i]
        dotted = f"{prefix}.{name}" if prefix else name
        if i + 1 < len(loc) and loc[i + 1].isdigit():  # an array of tables: [[dotted]]
            wanted, header = int(loc[i + 1]) + 1, f"[[{dotted}]]"
            for n in range(start, len(lines)):
                if lines[n].strip().replace(" ", "") == header:
                    wanted -= 1
                    if wanted == 0:
                        start, found = n + 1, n + 1
                        break
            prefix, i = dotted, i + 2
            continue
        key = re.compile(rf"^\s*{re.escape(name)}\s*=")
        for n in range(start, len(lines)):
            stripped = lines[n].strip().replace(" ", "")
            if stripped == f"[{dotted}]" or key.match(lines[n]):
                start, found = n + 1, n + 1
                break
        prefix, i = dotted, i + 1
    return f":{found}" if found else ""


EXAMPLE = '''\
# burst configuration. Every key is documented in docs/configuration.md.

[cluster]
name = "demo"                 # tags every instance burst creates: burst:cluster=demo
sla_seconds = 300             # from `burst up` to spillover running
store = "sqlite:///.burst/burst.db"   # or postgresql+psycopg://user@host/db
state_dir = ".burst"

# Services that may spill over, with what one replica reserves.
[[services]]
name = "web"
cpu = 1.0
memory_gib = 2.0
image = "registry.internal/web:stable"

# Tiers are tried in order: the shared on-prem pool first, then the clouds.
[[tiers]]
name = "cloud"
provider = "fake"             # fake | lab | onprem | aliyun | aws
ready_seconds = 20            # expected p95 launch-to-ready; a tier that cannot
                              # be ready before the deadline is skipped
concurrency = 50
[tiers.options]
boot_seconds = 2.0
[[tiers.instance_types]]
name = "fake.large"
cpu = 4
memory_gib = 8
price_per_hour = 0.20
zones = ["zone-a", "zone-b"]

[initialise]
kind = "recording"            # recording (stand-in) | ansible
[initialise.options]
seconds = 1.0

[swarm]
kind = "recording"            # recording (stand-in) | swarm
[swarm.options]
seconds = 0.5
'''
