"""The TOML configuration, validated with pydantic, strictly.

A bad file gives one line: the file, the line where the key is, the key path and what
was expected. Strict means: no key burst does not know (in the provider and step
options too), no coercion (`sla_seconds = "300"` is refused, not read as 300), finite
numbers only, and the paths the config names must exist or be creatable. `EXAMPLE`
is what `burst init` writes.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator, model_validator

from burst.errors import ConfigError
from burst.shapes import InstanceType
from burst.text import read_utf8, shorten

DEFAULT_PATH = "burst.toml"
ENV_VAR = "BURST_CONFIG"

_NAME = r"^[a-z][a-z0-9-]{0,39}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


#: the keys each built-in provider documents for its [tiers.options] (docs/providers.md,
#: docs/pool.md, docs/lab.md); `host_vars` is the core's, added to every host's inventory.
#: A provider installed from elsewhere may declare its own with an `option_keys` class
#: attribute; without one its options are left to it.
PROVIDER_OPTIONS: dict[str, frozenset[str]] = {
    "fake": frozenset({"boot_seconds", "launch_seconds", "state_file", "faults"}),
    "lab": frozenset({"lab", "lab_dir", "boot_delay_seconds", "sshd_broken_hosts", "puppet_broken_hosts",
                      "max_hosts"}),
    "onprem": frozenset({"store", "price_per_hour"}),
    "aws": frozenset({"region", "image_id", "launch_template", "subnet_by_zone", "security_group_ids", "key_name",
                      "endpoint_url", "max_launch_per_call", "rate_limits", "retry", "connect_timeout_seconds",
                      "read_timeout_seconds"}),
    "aliyun": frozenset({"region", "image_id", "vswitch_by_zone", "security_group_id", "key_pair_name",
                         "instance_name", "system_disk_category", "endpoint", "scheme", "max_launch_per_call",
                         "rate_limits", "retry", "connect_timeout_seconds", "read_timeout_seconds"}),
}
_CORE_TIER_OPTIONS = frozenset({"host_vars"})
_RECORDING_OPTIONS = frozenset({"seconds", "fail_hosts", "fail_first"})
#: the keys of [initialise.options] and [swarm.options] per kind
STEP_OPTIONS: dict[tuple[str, str], frozenset[str]] = {
    ("initialise", "recording"): _RECORDING_OPTIONS,
    ("initialise", "ansible"): frozenset({"forks", "extravars", "artifact_dir"}),
    ("swarm", "recording"): _RECORDING_OPTIONS | {"free_room"},
    ("swarm", "swarm"): frozenset({"docker_url", "tls_ca", "tls_cert", "tls_key", "manager_addr",
                                   "stop_grace_seconds"}),
}


Problem = tuple[tuple[str | int, ...], str]  # (key path, what was expected)


def _non_finite(value: Any, loc: tuple[str | int, ...]) -> Problem | None:
    """Options are free-form tables: `inf`/`nan` anywhere inside them is refused."""
    if isinstance(value, float) and not math.isfinite(value):
        return loc, f"Input should be a finite number, got {value!r}"
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, (*loc, k))
        if found:
            return found
    return None


def _options_problem(options: Mapping[str, Any], known: frozenset[str] | None, what: str,
                     loc: tuple[str | int, ...]) -> Problem | None:
    if known is not None:
        unknown = sorted(set(options) - known)
        if unknown:
            return (*loc, unknown[0]), f"unknown option of {what} (known: {', '.join(sorted(known))})"
    return _non_finite(dict(options), loc)


def _provider_option_keys(provider: str) -> frozenset[str] | None:
    if provider in PROVIDER_OPTIONS:
        return PROVIDER_OPTIONS[provider] | _CORE_TIER_OPTIONS
    try:
        from burst.provider.registry import provider_class

        declared = getattr(provider_class(provider), "option_keys", None)
    except Exception:  # noqa: BLE001  an unknown provider is reported when the tier is used
        return None
    return frozenset(declared) | _CORE_TIER_OPTIONS if declared is not None else None


class ClusterConfig(_Strict):
    name: str = Field(pattern=_NAME)
    sla_seconds: float = Field(300, gt=0, le=86400)
    #: SQLAlchemy URL; relative sqlite paths are taken from the config file's folder.
    store: str = "sqlite:///.burst/burst.db"
    #: where providers keep local state (the fake's instance file, lab records).
    state_dir: str = ".burst"
    #: seconds a phase (launch, initialise, join) may take per host before the host
    #: is failed and replaced.
    phase_timeout_seconds: float = Field(240, gt=0, le=86400)


#: sizes beyond these are typing mistakes, not machines
MAX_CPU = 4096
MAX_MEMORY_GIB = 65536


class ServiceConfig(_Strict):
    name: str = Field(pattern=_NAME)
    cpu: float = Field(gt=0, le=MAX_CPU)
    memory_gib: float = Field(gt=0, le=MAX_MEMORY_GIB)
    image: str = ""
    #: may extra replicas go to room the cluster's nodes already have (the service
    #: itself grows)? Not for a service that publishes a host-mode port: two of its
    #: tasks cannot share a node. Otherwise every extra replica goes to burst's hosts.
    grow_in_place: bool = False
    #: at most this many replicas on one new host: 1 for a service that publishes a
    #: host-mode port (the swarm places one such task per node)
    max_per_host: int | None = Field(None, ge=1, le=10000)


class InstanceTypeConfig(_Strict):
    name: str = Field(min_length=1, max_length=100)
    cpu: float = Field(gt=0, le=MAX_CPU)
    memory_gib: float = Field(gt=0, le=MAX_MEMORY_GIB)
    price_per_hour: float = Field(ge=0, le=1_000_000)
    zones: list[str] = Field(min_length=1)

    def to_type(self) -> InstanceType:
        """The instance type as the planner and the providers use it."""
        return InstanceType(name=self.name, cpu=self.cpu, memory_gib=self.memory_gib,
                            price_per_hour=self.price_per_hour, zones=tuple(self.zones))


class TierConfig(_Strict):
    name: str = Field(pattern=_NAME)
    provider: str = Field(min_length=1)
    #: expected seconds from launch to a host ready in the swarm (p95); the planner
    #: skips a tier that cannot be ready before the deadline.
    ready_seconds: float = Field(120, gt=0, le=86400)
    #: the planner takes at most this many hosts from the tier per burst (the rest goes
    #: to the next tier); at least 1: a tier that may give nothing is left out instead
    max_hosts: int | None = Field(None, ge=1, le=100_000)
    #: at most this many cloud calls or host steps in flight at once for this tier.
    concurrency: int = Field(32, ge=1, le=1000)
    #: spread each instance type's hosts over its zones (counts differ by at most one),
    #: as an Auto Scaling group does; false: every host in the type's first zone
    balance_zones: bool = True
    instance_types: list[InstanceTypeConfig] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)


class StepConfig(_Strict):
    """How hosts are initialised or joined: `recording` stand-ins, or the real thing."""

    kind: Literal["recording", "ansible", "swarm"] = "recording"
    options: dict[str, Any] = Field(default_factory=dict)


class LimitsConfig(_Strict):
    """Size guards: `burst up` refuses a plan above them unless the operator raises
    them here or confirms with `--yes` on a terminal; `burst plan` shows them."""

    #: hosts one burst may add, all tiers together
    hosts_per_burst: int = Field(1000, ge=1, le=100_000)
    #: hosts one burst may take from one tier
    hosts_per_tier: int = Field(500, ge=1, le=100_000)
    #: per-tier overrides of hosts_per_tier: {aws = 2000}
    tiers: dict[str, int] = Field(default_factory=dict)

    @field_validator("tiers")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for name, n in value.items():
            if not 1 <= n <= 100_000:
                raise ValueError(f"limits.tiers.{name} must be 1-100000, got {n!r}")
        return value

    def for_tier(self, tier: str) -> int:
        return self.tiers.get(tier, self.hosts_per_tier)


class DaemonConfig(BaseModel):
    """How `burst daemon` runs. Every key is optional.

    [daemon]
    tick_seconds = 1.0             # one pass: calendar, reconcile, notifications
    metrics_address = "127.0.0.1"  # /metrics and /healthz listen here
    metrics_port = 9464            # 0: no HTTP server
    webhook_url = "https://chat.internal/hooks/burst"
    webhook_timeout_seconds = 5.0  # deadline of one notification, all attempts included
    lead_margin_seconds = 60.0     # added to the measured p95 time-to-ready
    late_after_seconds = 30.0      # an action this long after it was due is journaled "late"
    missed_lookback_hours = 168.0  # how far back a restarted daemon looks for missed occurrences
    sla_risk_fraction = 0.25       # a burst not ready in the last quarter of its time to
                                   # the deadline is "at risk"
    leak_check_seconds = 300.0     # how often leak detection runs
    leader_lock_file = ""          # SQLite only; default: <database file>.leader.lock

    It lives here, with the rest of the config (the core does not import the daemon);
    `burst.daemon.config` re-exports it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    tick_seconds: float = Field(1.0, gt=0, le=60)
    metrics_address: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, le=65535)
    #: a URL is written as a string: the one field read leniently
    webhook_url: HttpUrl | None = Field(None, strict=False)
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    lead_margin_seconds: float = Field(60.0, ge=0, le=86400)
    late_after_seconds: float = Field(30.0, ge=0, le=86400)
    missed_lookback_hours: float = Field(168.0, gt=0, le=24 * 366)
    sla_risk_fraction: float = Field(0.25, gt=0, lt=1)
    leak_check_seconds: float = Field(300.0, gt=0, le=86400)
    leader_lock_file: str = ""


class Config(_Strict):
    cluster: ClusterConfig
    services: list[ServiceConfig] = Field(min_length=1)
    tiers: list[TierConfig] = Field(min_length=1)
    initialise: StepConfig = StepConfig()
    swarm: StepConfig = StepConfig()
    daemon: DaemonConfig = DaemonConfig()
    limits: LimitsConfig = LimitsConfig()
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
    """Read and validate the config; any problem is one `ConfigError` line naming the
    file, the line, the key path and what was expected."""
    path = config_path(path)
    text = read_utf8(path, ConfigError, "config", "a config file is UTF-8 TOML",
                     missing_hint=" (write one with `burst init`)")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = Config.model_validate({**data, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(_located(path, text, err["loc"], _expected(err)) + more) from None
    problem = config_problem(config)
    if problem is not None:
        raise ConfigError(_located(path, text, *problem))
    return config


def _located(path: Path, text: str, loc: tuple, expected: str) -> str:
    return f"{path}{_line_of(text, [str(p) for p in loc])}: {_key_path(loc)}: {expected}"


def config_problem(config: Config) -> Problem | None:
    """What pydantic cannot see from one key alone: the options each provider and step
    kind knows, the names `[limits]` refers to, and the paths on this machine."""
    for i, tier in enumerate(config.tiers):
        found = _options_problem(tier.options, _provider_option_keys(tier.provider), f"provider {tier.provider!r}",
                                 ("tiers", i, "options"))
        if found:
            return found
    for step in ("initialise", "swarm"):
        cfg = getattr(config, step)
        found = _options_problem(cfg.options, STEP_OPTIONS.get((step, cfg.kind)), f"{step} kind {cfg.kind!r}",
                                 (step, "options"))
        if found:
            return found
    tiers = {t.name for t in config.tiers}
    for name in config.limits.tiers:
        if name not in tiers:
            return ("limits", "tiers", name), f"no tier of that name (tiers: {', '.join(sorted(tiers))})"
    return _paths_problem(config)


def _paths_problem(config: Config) -> Problem | None:
    """`state_dir` must be a directory or creatable (burst creates it); a SQLite store
    must be in a directory that exists, or in the state dir: a mistyped path is an
    error, not a new empty store."""
    state_dir = config.state_dir
    why = _not_creatable(state_dir)
    if why:
        return ("cluster", "state_dir"), f"{state_dir} {why}"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(config.store_url)
    except ArgumentError:
        return ("cluster", "store"), "not a database URL (sqlite:///path or postgresql+psycopg://user@host/db)"
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        return ("cluster", "store"), f"only sqlite and postgresql stores are supported, got {backend!r}"
    if backend == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database)
        folder = db.parent
        if folder.resolve() == state_dir or state_dir in folder.resolve().parents:
            return None  # burst creates its own state dir
        if not folder.is_dir():
            return ("cluster", "store"), (f"the directory {folder} does not exist: create it, or fix the path "
                                          "(burst does not start a new empty store in a mistyped place)")
        if db.exists() and not db.is_file():
            return ("cluster", "store"), f"{db} is not a file"
    return None


def _not_creatable(path: Path) -> str | None:
    if path.exists():
        if not path.is_dir():
            return "is not a directory"
        return None if os.access(path, os.W_OK | os.X_OK) else "is not writable"
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot be created: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: {parent} is not writable"
    return None


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
        return f"{msg}, got {shorten(repr(err['input']), 80)}"
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
