"""The cloud provider base: everything aws and aliyun do alike, written once.

A cloud provider (`CloudProvider` subclass) brings only
- its options (a `CloudOptions` subclass: image, network per zone, endpoint...),
- its adaptor (the SDK calls, the SDK imported lazily through `burst.provider.lazy`),
- its error map (an `ErrorCodes` table and `burst.provider.errors.map_errors` around
  every SDK call),
and five small hooks (`_connect`, `_run_instances`, `_describe_page`, `_terminate_call`,
`_probe`). The base does the rest, the same way on every cloud:

- launch: count within `max_batch`, the zone's network from the options, the owner tags
  plus `burst:batch` = the request id, ClientToken from the request id, one paced and
  retried call, and a short batch raised as `InsufficientCapacityError(created=...)`;
- describe / list: ids de-duplicated, chunks of `ids_per_call`, every page followed
  (NextToken), each page one paced call;
- terminate: describe first, `refuse_not_owned` before touching any, chunks of
  `ids_per_call`, gone counts as done (an id that vanished between describe and the call
  fails the chunk on both clouds: look again, terminate the rest);
- check: one cheap call, never retried, with connect and read timeouts cut to the deadline.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from burst.provider import (
    TAG_BATCH,
    Instance,
    InstanceNotFoundError,
    InstanceState,
    InstanceType,
    InsufficientCapacityError,
    LaunchRequest,
    Provider,
    ProviderConfigError,
    ProviderContext,
    TransientProviderError,
)
from burst.provider.pacing import Pacer, RateLimit, RetryPolicy, chunked, client_token

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class InstanceTypeOption(BaseModel):
    """One entry of the `instance_types` list the core injects into a tier's options."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    cpu: float = Field(gt=0)
    memory_gib: float = Field(gt=0)
    price_per_hour: float = Field(ge=0)
    zones: list[str] = Field(min_length=1)

    def to_instance_type(self) -> InstanceType:
        return InstanceType(self.name, self.cpu, self.memory_gib, self.price_per_hour, tuple(self.zones))


def parse_options(model: type[M], options: Mapping, *, provider: str) -> M:
    """Validate a provider's options; a bad one is a ProviderConfigError naming the key."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "options"
        raise ProviderConfigError(f"{provider} options: {key}: {err['msg']}", provider=provider) from None


def merged_limits(defaults: Mapping[str, RateLimit], given: Mapping[str, RateLimit]) -> dict[str, RateLimit]:
    """The default buckets, with the ones the config names replaced; an unknown name is
    an error (a typo must not silently leave a bucket at its default)."""
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown rate limit(s) {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **given}


class CloudOptions(BaseModel):
    """The options every cloud tier has. Subclasses add their own and set the two class
    variables: the client-side buckets (`default_limits`, by action name) and the field
    mapping each zone to its network (`zone_field`: subnet_by_zone, vswitch_by_zone)."""

    model_config = ConfigDict(extra="forbid")
    default_limits: ClassVar[dict[str, RateLimit]] = {}
    zone_field: ClassVar[str] = ""

    region: str = Field(min_length=1)
    max_launch_per_call: int = Field(100, ge=1, le=100)
    #: replaces some of `default_limits`; the result always holds every bucket
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict, validate_default=True)
    retry: RetryPolicy = RetryPolicy()
    connect_timeout_seconds: float = Field(5, gt=0)
    read_timeout_seconds: float = Field(30, gt=0)
    instance_types: list[InstanceTypeOption] = Field(default_factory=list)

    @field_validator("rate_limits")
    @classmethod
    def _known_limits(cls, value: dict[str, RateLimit]) -> dict[str, RateLimit]:
        return merged_limits(cls.default_limits, value)

    @model_validator(mode="after")
    def _zones_have_networks(self):
        networks = getattr(self, self.zone_field)
        for itype in self.instance_types:
            missing = [z for z in itype.zones if z not in networks]
            if missing:
                raise ValueError(f"instance type {itype.name} lists zone(s) {missing} with no {self.zone_field} entry")
        return self

    def network_for(self, zone: str, *, provider: str) -> str:
        network = getattr(self, self.zone_field).get(zone)
        if network is None:
            raise ProviderConfigError(f"{provider} options: {self.zone_field} has no entry for zone {zone}",
                                      provider=provider)
        return network


class CloudProvider(Provider):
    """A provider backed by a cloud API (see the module docstring for what the base does)."""

    options_model: ClassVar[type[CloudOptions]]
    #: ids one describe / terminate call may name (both clouds: 100)
    ids_per_call: ClassVar[int] = 100
    #: the cloud's own code for "fewer instances than asked", given to a short batch's error
    partial_capacity_code: ClassVar[str]

    def __init__(self, context: ProviderContext, options: Mapping[str, Any]):
        super().__init__(context, options)
        self.opts = parse_options(self.options_model, options, provider=self.name)
        self.max_batch = self.opts.max_launch_per_call
        self.pacer = Pacer(self.opts.rate_limits, self.opts.retry)
        self.adaptor = self._connect()

    # --- what each cloud brings ------------------------------------------------------

    @abc.abstractmethod
    def _connect(self) -> Any:
        """The SDK adaptor (no API call is made by building it)."""

    @abc.abstractmethod
    def _run_instances(self, req: LaunchRequest, *, network: str, client_token: str,
                       tags: Mapping[str, str]) -> list[Instance]:
        """One launch call: up to `req.count` (fewer when the zone is short), tagged at creation."""

    @abc.abstractmethod
    def _describe_page(self, ids: Sequence[str] | None, next_token: str | None) -> tuple[list[Instance], str | None]:
        """One page: of these ids (at most `ids_per_call`), or with ids None, of every
        non-terminated instance tagged as this cluster's; and the next page's token."""

    @abc.abstractmethod
    def _terminate_call(self, ids: Sequence[str], *, client_token: str) -> None:
        """One terminate call for at most `ids_per_call` ids."""

    @abc.abstractmethod
    def _probe(self, *, connect_timeout: float, read_timeout: float) -> None:
        """One cheap authenticated call (regions or zones) within these timeouts."""

    # --- the contract, once ----------------------------------------------------------

    def instance_types(self) -> Sequence[InstanceType]:
        return [t.to_instance_type() for t in self.opts.instance_types]

    def launch(self, req: LaunchRequest) -> list[Instance]:
        if not 1 <= req.count <= self.max_batch:
            raise ValueError(f"{self.name}: launch count {req.count} outside 1..{self.max_batch}")
        network = self.opts.network_for(req.zone, provider=self.name)
        tags = self.owner_tags({**req.tags, TAG_BATCH: req.request_id})
        token = client_token(req.request_id)
        instances = self.pacer.call(
            "launch", lambda: self._run_instances(req, network=network, client_token=token, tags=tags),
            cost={"launched_instances": req.count},
        )
        if len(instances) < req.count:
            raise InsufficientCapacityError.no_stock(
                self.name, f"got {len(instances)} of {req.count}", code=self.partial_capacity_code,
                zone=req.zone, instance_type=req.instance_type, created=instances,
            )  # fmt: skip
        return instances

    def describe(self, ids: Sequence[str]) -> list[Instance]:
        found: list[Instance] = []
        for chunk in chunked(list(dict.fromkeys(ids)), self.ids_per_call):
            found += self._all_pages(chunk)
        return found

    def list(self) -> list[Instance]:
        return self._all_pages(None)

    def _all_pages(self, ids: Sequence[str] | None) -> list[Instance]:
        found: list[Instance] = []
        token: str | None = None
        while True:
            page, token = self.pacer.call("describe", lambda: self._describe_page(ids, token))
            found += page
            if not token:
                return found

    def terminate(self, ids: Sequence[str], *, request_id: str) -> None:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return
        live = self._owned_live(ids)
        log.info("%s terminate %s: %d asked, %d live", self.name, request_id, len(ids), len(live))
        for chunk in chunked(live, self.ids_per_call):
            try:
                self._terminate_chunk(chunk, request_id)
            except InstanceNotFoundError:
                # one id vanished between describe and terminate and the cloud failed the
                # whole call: look again and terminate the rest (gone counts as done)
                rest = self._owned_live(chunk)
                if rest:
                    self._terminate_chunk(rest, request_id)

    def _owned_live(self, ids: Sequence[str]) -> list[str]:
        """Of these ids, the ones still there; NotOwnedError if any is not ours."""
        found = self.describe(ids)  # ids not found are already gone: done
        self.refuse_not_owned(found)
        return [i.id for i in found if i.state is not InstanceState.TERMINATED]

    def _terminate_chunk(self, ids: list[str], request_id: str) -> None:
        # the token covers this exact id set, so a retried call is the same call
        token = client_token(request_id, *sorted(ids))
        self.pacer.call("terminate", lambda: self._terminate_call(ids, client_token=token),
                        cost={"terminated_instances": len(ids)})

    def check(self, deadline: float) -> None:
        """One cheap call (see `_probe`), not retried. Half the time left is the most the
        connection may take, the rest the reply (each also capped by the options' own
        timeouts), so a closed or silent endpoint fails by `deadline`. No time left: no call."""

        def time_left() -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransientProviderError(f"{self.name}: no time left to check the API (deadline passed)",
                                             provider=self.name)
            return remaining

        def probe() -> None:
            remaining = time_left()  # again: the token may have taken a while
            connect = min(self.opts.connect_timeout_seconds, remaining / 2)
            read = min(self.opts.read_timeout_seconds, remaining - connect)
            self._probe(connect_timeout=connect, read_timeout=read)

        time_left()
        self.pacer.once("describe", probe, deadline=deadline)

    def close(self) -> None:
        self.adaptor.close()
