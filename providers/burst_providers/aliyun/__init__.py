"""Aliyun ECS provider: aliyun-python-sdk-ecs V1 (in adaptor.py), errors mapped in
errors.py, paced by burst.provider.pacing. The tier's `[tiers.options]` are validated
by `AliyunOptions`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from burst.provider import (
    TAG_BATCH,
    TAG_CLUSTER,
    Instance,
    InstanceNotFoundError,
    InstanceState,
    InstanceType,
    LaunchRequest,
    Provider,
    ProviderConfigError,
    ProviderContext,
)
from burst.provider.pacing import (
    InstanceTypeOption,
    Pacer,
    RateLimit,
    RetryPolicy,
    chunked,
    client_token,
    merged_limits,
    parse_options,
)
from burst_providers.aliyun.errors import capacity_error

log = logging.getLogger(__name__)

#: ENVIRONMENT.md: an account creates at most 5,000 instances a minute. ECS does not
#: publish per-action request buckets; these stay well under what it tolerates.
DEFAULT_LIMITS = {
    "launch": RateLimit(burst=10, per_second=5),
    "launched_instances": RateLimit(burst=5000, per_second=5000 / 60),
    "describe": RateLimit(burst=20, per_second=10),
    "terminate": RateLimit(burst=10, per_second=5),
}

STATES = {
    "Pending": InstanceState.PENDING,
    "Starting": InstanceState.PENDING,
    "Running": InstanceState.RUNNING,
    "Stopping": InstanceState.STOPPING,
    "Stopped": InstanceState.STOPPING,
}
#: ECS limits: InstanceIds (a JSON array) <= 100, MaxResults <= 100, DeleteInstances <= 100 ids
IDS_PER_CALL = 100


class AliyunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region: str = Field(min_length=1)
    image_id: str = Field(min_length=1)
    vswitch_by_zone: dict[str, str] = Field(min_length=1)
    security_group_id: str = Field(min_length=1)
    key_pair_name: str | None = None
    #: instances are named <instance_name><unique suffix>
    instance_name: str | None = None
    system_disk_category: str | None = None
    #: host[:port] of the ECS API; default: the region's public endpoint
    endpoint: str | None = None
    #: https always, except "http" set explicitly together with an endpoint (the emulator)
    scheme: Literal["https", "http"] = "https"
    max_launch_per_call: int = Field(100, ge=1, le=100)
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    connect_timeout_seconds: float = Field(5, ge=1)
    read_timeout_seconds: float = Field(30, ge=1)
    instance_types: list[InstanceTypeOption] = Field(default_factory=list)

    @field_validator("rate_limits")
    @classmethod
    def _known_limits(cls, value: dict[str, RateLimit]) -> dict[str, RateLimit]:
        return merged_limits(DEFAULT_LIMITS, value)

    @model_validator(mode="after")
    def _scheme_and_zones(self) -> "AliyunOptions":
        if self.scheme == "http" and not self.endpoint:
            raise ValueError("scheme 'http' is only for an explicit endpoint (the emulator); ECS itself needs https")
        for itype in self.instance_types:
            missing = [z for z in itype.zones if z not in self.vswitch_by_zone]
            if missing:
                raise ValueError(f"instance type {itype.name} lists zone(s) {missing} with no vswitch_by_zone entry")
        return self


class AliyunProvider(Provider):
    """ECS hosts. Launch: one RunInstances per batch (Amount <= 100, MinAmount 1),
    ClientToken = request id, tags at creation. Terminate: refuses untagged instances,
    then DeleteInstances with Force, <= 100 ids a call."""

    name = "aliyun"

    def __init__(self, context: ProviderContext, options: Mapping[str, Any]):
        super().__init__(context, options)
        self.opts = parse_options(AliyunOptions, options, provider=self.name)
        self.max_batch = self.opts.max_launch_per_call
        self.pacer = Pacer(self.opts.rate_limits or DEFAULT_LIMITS, self.opts.retry)
        from burst_providers.aliyun.adaptor import EcsAdaptor

        self.adaptor = EcsAdaptor(
            region=self.opts.region,
            endpoint=self.opts.endpoint,
            scheme=self.opts.scheme,
            connect_timeout=self.opts.connect_timeout_seconds,
            read_timeout=self.opts.read_timeout_seconds,
        )

    def instance_types(self) -> Sequence[InstanceType]:
        return [t.to_instance_type() for t in self.opts.instance_types]

    def launch(self, req: LaunchRequest) -> list[Instance]:
        if not 1 <= req.count <= self.max_batch:
            raise ValueError(f"aliyun: launch count {req.count} outside 1..{self.max_batch}")
        vswitch_id = self.opts.vswitch_by_zone.get(req.zone)
        if vswitch_id is None:
            raise ProviderConfigError(
                f"aliyun options: vswitch_by_zone has no vSwitch for zone {req.zone}", provider=self.name
            )
        tags = self.owner_tags({**req.tags, TAG_BATCH: req.request_id})
        token = client_token(req.request_id)
        ids = self.pacer.call(
            "launch",
            lambda: self.adaptor.run_instances(
                client_token=token,
                amount=req.count,
                min_amount=1,
                instance_type=req.instance_type,
                zone=req.zone,
                vswitch_id=vswitch_id,
                security_group_id=self.opts.security_group_id,
                image_id=self.opts.image_id,
                tags=tags,
                key_pair_name=self.opts.key_pair_name,
                instance_name=self.opts.instance_name,
                system_disk_category=self.opts.system_disk_category,
            ),
            cost={"launched_instances": req.count},
        )
        # RunInstances answers with ids only; the rest is what was asked (no extra call)
        now = datetime.now(timezone.utc)
        instances = [
            Instance(id=i, provider=self.name, zone=req.zone, instance_type=req.instance_type,
                     state=InstanceState.PENDING, tags=tags, created_at=now)
            for i in ids
        ]
        if len(instances) < req.count:
            raise capacity_error(
                f"got {len(instances)} of {req.count}",
                code="OperationDenied.NoStock",
                zone=req.zone,
                instance_type=req.instance_type,
                created=instances,
            )
        return instances

    def describe(self, ids: Sequence[str]) -> list[Instance]:
        found: list[Instance] = []
        for chunk in chunked(list(dict.fromkeys(ids)), IDS_PER_CALL):
            found += self._describe_all(ids=chunk)
        return found

    def list(self) -> list[Instance]:
        # deleted instances disappear from ECS, so every status left is non-terminated
        return self._describe_all(tags={TAG_CLUSTER: self.cluster})

    def _describe_all(self, **query: Any) -> list[Instance]:
        found: list[Instance] = []
        token: str | None = None
        while True:
            page, token = self.pacer.call(
                "describe", lambda: self.adaptor.describe_instances(next_token=token, max_results=IDS_PER_CALL, **query)
            )
            found += [to_instance(r) for r in page]
            if not token:
                return found

    def terminate(self, ids: Sequence[str], *, request_id: str) -> None:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return
        found = self.describe(ids)  # ids not found are already gone: done
        self.refuse_not_owned(found)
        log.info("aliyun terminate %s: %d asked, %d present", request_id, len(ids), len(found))
        for chunk in chunked([i.id for i in found], IDS_PER_CALL):
            self._delete_chunk(chunk, request_id)

    def _delete_chunk(self, chunk: list[str], request_id: str) -> None:
        def delete(ids: list[str]) -> None:
            # the token covers this exact id set, so a retried call is the same call
            token = client_token(request_id, *sorted(ids))
            self.pacer.call("terminate", lambda: self.adaptor.delete_instances(ids, client_token=token))

        try:
            delete(chunk)
        except InstanceNotFoundError:
            # one id vanished between describe and delete and ECS failed the whole call:
            # look again and delete the rest (gone counts as done)
            again = self.describe(chunk)
            self.refuse_not_owned(again)
            if again:
                delete([i.id for i in again])

    def close(self) -> None:
        self.adaptor.close()


def _address(raw: Mapping[str, Any]) -> str | None:
    for path in (("VpcAttributes", "PrivateIpAddress"), ("InnerIpAddress",)):
        node: Any = raw
        for key in path:
            node = node.get(key, {}) if isinstance(node, Mapping) else {}
        ips = node.get("IpAddress", []) if isinstance(node, Mapping) else []
        if ips:
            return ips[0]
    return None


def _created(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def to_instance(raw: Mapping[str, Any]) -> Instance:
    return Instance(
        id=raw["InstanceId"],
        provider=AliyunProvider.name,
        zone=raw.get("ZoneId", ""),
        instance_type=raw.get("InstanceType", ""),
        state=STATES.get(raw.get("Status", ""), InstanceState.PENDING),
        address=_address(raw),
        tags={t["TagKey"]: t.get("TagValue", "") for t in raw.get("Tags", {}).get("Tag", [])},
        created_at=_created(raw.get("CreationTime")),
    )


__all__ = ["AliyunProvider", "AliyunOptions"]
