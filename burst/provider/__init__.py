"""The provider contract: how burst asks a cloud (or the on-prem pool) for hosts.

Every provider (fake, lab, onprem, aliyun, aws) implements `Provider` and passes the
one contract suite in tests/contract. The contract is in the docstrings below; a
provider that cannot honour a clause raises, it never returns None.

Ownership: every instance a provider creates carries the tags in `owner_tags`
(cluster, burst id, event, launch batch). `terminate` and `list` act only on
instances whose `burst:cluster` tag is this provider's cluster: a destructive call
fails closed on anything else.

Errors (burst.provider.errors), the same on every provider, whatever the call:
- `InsufficientCapacityError`: this zone / type has no stock (or not enough: `created`
  holds what was made). Never retried: the core tries the next zone, type or tier.
- `QuotaExceededError`: the account is at its limit; another zone does not help.
- `ThrottledError`, `TransientProviderError` (connection refused, timeouts, 5xx): the
  only errors a provider retries itself (burst.provider.pacing, jittered backoff under
  one deadline); what reaches the caller has used that deadline up.
- `ProviderAuthError` (missing, wrong or expired credentials, a refused signature) and
  `ProviderConfigError` (bad options, an unknown region, zone, image or instance type):
  fatal, not retryable, never a capacity error; an operator must act.
- `InstanceNotFoundError` (`get`), `NotOwnedError` (`terminate`).
- Anything else the cloud answers is a plain `ProviderError`: fatal, not retried.
No error text carries a credential: every `ProviderError` scrubs its message
(`burst.provider.errors.scrub`), and SDK exceptions are not chained onto it.

Cloud providers (aws, aliyun) share one implementation of launch, describe, list,
terminate and check in burst.provider.cloud; each brings its SDK adaptor, error map
and options.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from burst.shapes import InstanceType  # noqa: F401  (re-exported for providers)
from burst.provider.errors import (  # noqa: F401  (re-exported for providers)
    InstanceNotFoundError,
    InsufficientCapacityError,
    NotOwnedError,
    ProviderAuthError,
    ProviderConfigError,
    ProviderError,
    QuotaExceededError,
    ThrottledError,
    TransientProviderError,
)

TAG_CLUSTER = "burst:cluster"
TAG_BURST = "burst:burst-id"
TAG_EVENT = "burst:event"
TAG_BATCH = "burst:batch"
#: the store that launched it: gc collects only what its own store launched
TAG_STORE = "burst:store"


class InstanceState(str, enum.Enum):
    """The provider-neutral instance state."""

    PENDING = "pending"  # accepted, not yet reachable
    RUNNING = "running"  # booted, has an address
    STOPPING = "stopping"  # being deleted
    TERMINATED = "terminated"  # gone, or released back to its owner


@dataclass(frozen=True)
class Instance:
    id: str
    provider: str
    zone: str
    instance_type: str
    state: InstanceState
    address: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True)
class LaunchRequest:
    """Launch `count` instances of one type in one zone.

    `request_id` makes the call idempotent: the same request id always yields the
    same instances (ClientToken on both clouds). `tags` are added to the owner tags.
    """

    request_id: str
    count: int
    instance_type: str
    zone: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderContext:
    """What every provider is built with, besides its own options."""

    cluster: str
    state_dir: Path
    store_url: str = ""


class Provider(abc.ABC):
    """A source of hosts.

    Implementations import their SDK lazily (burst.provider.lazy: only when used, so
    `import burst.cli` loads no SDK), map every SDK error to `burst.provider.errors` in
    one module, and give every wait a deadline. Building a provider makes no API call.
    """

    name: ClassVar[str]
    #: How many instances one launch call may ask for (ECS Amount <= 100).
    max_batch: ClassVar[int] = 100
    #: Seconds between two describes of launching instances (ECS advises 1-2 s).
    poll_seconds: ClassVar[float] = 1.0

    def __init__(self, context: ProviderContext, options: Mapping[str, Any]):
        self.context = context
        self.cluster = context.cluster
        self.options = dict(options)

    @abc.abstractmethod
    def instance_types(self) -> Sequence[InstanceType]:
        """The shapes this provider offers, with cpu, memory, price and zones."""

    @abc.abstractmethod
    def launch(self, req: LaunchRequest) -> list[Instance]:
        """Create `req.count` instances (at most `max_batch`), tagged with the owner tags.

        Idempotent on `req.request_id`: a repeated call returns the instances the
        first call created and creates none. Partial capacity raises
        `InsufficientCapacityError(created=[...])` with the instances that were made;
        no capacity raises it with `created=[]` at once (fail fast, no retry).
        `QuotaExceededError`, `ThrottledError`, `ProviderAuthError`,
        `ProviderConfigError` as their names say.
        """

    @abc.abstractmethod
    def describe(self, ids: Sequence[str]) -> list[Instance]:
        """The current view of these instances, in as few calls as the API allows.
        Unknown or long-gone ids are left out of the result (not an error)."""

    def get(self, instance_id: str) -> Instance:
        """One instance; `InstanceNotFoundError` if it does not exist."""
        found = self.describe([instance_id])
        if not found:
            raise InstanceNotFoundError(f"{self.name}: no instance {instance_id}", provider=self.name)
        return found[0]

    @abc.abstractmethod
    def list(self) -> list[Instance]:
        """Every non-terminated instance tagged as this cluster's. Drives leak detection."""

    @abc.abstractmethod
    def terminate(self, ids: Sequence[str], *, request_id: str) -> None:
        """Terminate (or release) these instances. Idempotent: an instance already
        gone counts as done. Refuses, with `NotOwnedError` and before touching any of
        them, an instance that is not tagged as this cluster's."""

    def check(self, deadline: float) -> None:
        """Can this provider reach its API with its credentials? Returns None when it can;
        raises the classified error when not: `ProviderAuthError` (credentials missing or
        refused), `ProviderConfigError` (unknown region or zone, bad endpoint options),
        `TransientProviderError` (refused connection, no answer, 5xx) or `ThrottledError`.

        `deadline` is a `time.monotonic()` value and bounds the whole check: one cheap
        call (e.g. DescribeRegions / DescribeAvailabilityZones), never retried, its
        connect and read timeouts cut to the time left, so a closed or silent endpoint
        fails by the deadline (seconds), not after the provider's retry deadline. Creates
        nothing and changes nothing. Safe to call from `burst up` before any launch and
        from `burst doctor`. Optional: providers with no remote API (fake, lab, onprem)
        keep this default, which checks nothing."""

    def host_vars(self, instance_id: str, address: str) -> dict[str, Any]:
        """Inventory variables Ansible needs to reach and set up this instance (ssh
        port, user, key file, per-host roots in the lab). Optional: {} by default."""
        return {}

    #: True when terminate hands the host back to an owner instead of destroying it
    #: (the on-prem pool): the host then ends `released`, not `terminated`.
    returns_to_owner: ClassVar[bool] = False

    def close(self) -> None:
        """Release clients and connections. Optional."""

    def owner_tags(self, extra: Mapping[str, str] = ()) -> dict[str, str]:
        tags = {TAG_CLUSTER: self.cluster}
        tags.update(dict(extra))
        return tags

    def is_owned(self, instance: Instance) -> bool:
        return instance.tags.get(TAG_CLUSTER) == self.cluster

    def refuse_not_owned(self, instances: Sequence[Instance]) -> None:
        """`NotOwnedError` if any of these is not tagged as this cluster's: called
        before a destructive call touches any of them (fail closed)."""
        foreign = [i.id for i in instances if not self.is_owned(i)]
        if foreign:
            raise NotOwnedError(f"{self.name}: refusing to terminate {len(foreign)} instance(s) not tagged "
                                f"{TAG_CLUSTER}={self.cluster}: {', '.join(foreign[:5])}", provider=self.name)
