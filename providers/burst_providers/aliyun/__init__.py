"""Aliyun ECS provider: the options (`AliyunOptions`, a tier's `[tiers.options]`), the
ECS calls (adaptor.py, aliyun-python-sdk-ecs V1 imported lazily) and the error map
(errors.py). Launch, describe, list, terminate and check are burst.provider.cloud's,
the same as aws's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from burst.provider import TAG_CLUSTER, Instance, InstanceState, LaunchRequest, ProviderConfigError
from burst.provider.cloud import CloudOptions, CloudProvider
from burst.provider.pacing import RateLimit

STATES = {
    "Pending": InstanceState.PENDING,
    "Starting": InstanceState.PENDING,
    "Running": InstanceState.RUNNING,
    "Stopping": InstanceState.STOPPING,
    "Stopped": InstanceState.STOPPING,
}


class AliyunOptions(CloudOptions):
    #: ENVIRONMENT.md: an account creates at most 5,000 instances a minute. ECS does not
    #: publish per-action request buckets; these stay well under what it tolerates.
    default_limits: ClassVar[dict[str, RateLimit]] = {
        "launch": RateLimit(burst=10, per_second=5),
        "launched_instances": RateLimit(burst=5000, per_second=5000 / 60),
        "describe": RateLimit(burst=20, per_second=10),
        "terminate": RateLimit(burst=10, per_second=5),
    }
    zone_field: ClassVar[str] = "vswitch_by_zone"

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

    @model_validator(mode="after")
    def _https_unless_emulated(self) -> "AliyunOptions":
        if self.scheme == "http" and not self.endpoint:
            raise ValueError("scheme 'http' is only for an explicit endpoint (the emulator); ECS itself needs https")
        return self


DEFAULT_LIMITS = AliyunOptions.default_limits


class AliyunProvider(CloudProvider):
    """ECS hosts. Launch: one RunInstances per batch (Amount <= 100, MinAmount 1),
    ClientToken = request id, tags at creation. Describe: InstanceIds (a JSON array of
    <= 100), MaxResults 100, NextToken. Terminate: owned only, DeleteInstances with
    Force, <= 100 ids a call, ClientToken per id set. Check: DescribeRegions, and the
    configured region must be among them."""

    name = "aliyun"
    options_model = AliyunOptions
    partial_capacity_code = "OperationDenied.NoStock"
    opts: AliyunOptions

    def _connect(self):
        from burst_providers.aliyun.adaptor import EcsAdaptor

        return EcsAdaptor(region=self.opts.region, endpoint=self.opts.endpoint, scheme=self.opts.scheme,
                          connect_timeout=self.opts.connect_timeout_seconds,
                          read_timeout=self.opts.read_timeout_seconds)

    def _run_instances(self, req: LaunchRequest, *, network: str, client_token: str,
                       tags: Mapping[str, str]) -> list[Instance]:
        ids = self.adaptor.run_instances(
            client_token=client_token, amount=req.count, min_amount=1, instance_type=req.instance_type,
            zone=req.zone, vswitch_id=network, security_group_id=self.opts.security_group_id,
            image_id=self.opts.image_id, tags=tags, key_pair_name=self.opts.key_pair_name,
            instance_name=self.opts.instance_name, system_disk_category=self.opts.system_disk_category,
        )  # fmt: skip
        # RunInstances answers with ids only; the rest is what was asked (no extra call)
        now = datetime.now(timezone.utc)
        return [Instance(id=i, provider=self.name, zone=req.zone, instance_type=req.instance_type,
                         state=InstanceState.PENDING, tags=dict(tags), created_at=now) for i in ids]

    def _describe_page(self, ids: Sequence[str] | None, next_token: str | None) -> tuple[list[Instance], str | None]:
        # deleted instances disappear from ECS, so every status a tag query shows is live
        query: dict[str, Any] = {"ids": ids} if ids is not None else {"tags": {TAG_CLUSTER: self.cluster}}
        page, token = self.adaptor.describe_instances(next_token=next_token, max_results=self.ids_per_call, **query)
        return [to_instance(r) for r in page], token

    def _terminate_call(self, ids: Sequence[str], *, client_token: str) -> None:
        self.adaptor.delete_instances(ids, client_token=client_token)

    def _probe(self, *, connect_timeout: float, read_timeout: float) -> None:
        regions = self.adaptor.regions(connect_timeout=connect_timeout, read_timeout=read_timeout)
        if self.opts.region not in regions:
            raise ProviderConfigError(f"aliyun: region {self.opts.region} is not one this account sees "
                                      f"({', '.join(regions) or 'none'})", provider=self.name)


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
