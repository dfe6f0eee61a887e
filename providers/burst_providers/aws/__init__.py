"""AWS EC2 provider: boto3 (in adaptor.py), errors mapped in errors.py, paced by
burst.provider.pacing. The tier's `[tiers.options]` are validated by `AwsOptions`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

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
from burst_providers.aws.errors import capacity_error

log = logging.getLogger(__name__)

#: ENVIRONMENT.md: RunInstances request bucket 5 refill 2/s, resource bucket 1000
#: instances refill 2/s; TerminateInstances 1000 instances refill 20/s; describe 100 refill 20/s.
DEFAULT_LIMITS = {
    "launch": RateLimit(burst=5, per_second=2),
    "launched_instances": RateLimit(burst=1000, per_second=2),
    "describe": RateLimit(burst=100, per_second=20),
    "terminate": RateLimit(burst=100, per_second=20),
    "terminated_instances": RateLimit(burst=1000, per_second=20),
}

STATES = {
    "pending": InstanceState.PENDING,
    "running": InstanceState.RUNNING,
    "shutting-down": InstanceState.STOPPING,
    "stopping": InstanceState.STOPPING,
    "stopped": InstanceState.STOPPING,
    "terminated": InstanceState.TERMINATED,
}
LIVE_STATES = [name for name, state in STATES.items() if state is not InstanceState.TERMINATED]
#: ids per DescribeInstances filter / TerminateInstances call
IDS_PER_CALL = 100


class LaunchTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    name: str | None = None
    version: str = "$Default"

    @model_validator(mode="after")
    def _one_ref(self) -> "LaunchTemplate":
        if bool(self.id) == bool(self.name):
            raise ValueError("give exactly one of id or name")
        return self

    def as_param(self) -> dict[str, str]:
        ref = {"LaunchTemplateId": self.id} if self.id else {"LaunchTemplateName": self.name}
        return {**ref, "Version": self.version}


class AwsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region: str = Field(min_length=1)
    image_id: str | None = None
    launch_template: LaunchTemplate | None = None
    subnet_by_zone: dict[str, str] = Field(min_length=1)
    security_group_ids: list[str] = Field(default_factory=list)
    key_name: str | None = None
    #: for tests against moto only; production uses the region's endpoint
    endpoint_url: str | None = None
    max_launch_per_call: int = Field(100, ge=1, le=100)
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    connect_timeout_seconds: float = Field(5, gt=0)
    read_timeout_seconds: float = Field(30, gt=0)
    instance_types: list[InstanceTypeOption] = Field(default_factory=list)

    @field_validator("rate_limits")
    @classmethod
    def _known_limits(cls, value: dict[str, RateLimit]) -> dict[str, RateLimit]:
        return merged_limits(DEFAULT_LIMITS, value)

    @model_validator(mode="after")
    def _image_and_zones(self) -> "AwsOptions":
        if bool(self.image_id) == bool(self.launch_template):
            raise ValueError("give exactly one of image_id or launch_template")
        for itype in self.instance_types:
            missing = [z for z in itype.zones if z not in self.subnet_by_zone]
            if missing:
                raise ValueError(f"instance type {itype.name} lists zone(s) {missing} with no subnet_by_zone entry")
        return self


class AwsProvider(Provider):
    """EC2 hosts. Launch: one RunInstances per batch of <= 100, ClientToken = request id,
    tags applied at launch. Terminate: refuses untagged instances, then batches of <= 100."""

    name = "aws"

    def __init__(self, context: ProviderContext, options: Mapping[str, Any]):
        super().__init__(context, options)
        self.opts = parse_options(AwsOptions, options, provider=self.name)
        self.max_batch = self.opts.max_launch_per_call
        self.pacer = Pacer(self.opts.rate_limits or DEFAULT_LIMITS, self.opts.retry)
        from burst_providers.aws.adaptor import Ec2Adaptor

        self.adaptor = Ec2Adaptor(
            region=self.opts.region,
            endpoint_url=self.opts.endpoint_url,
            connect_timeout=self.opts.connect_timeout_seconds,
            read_timeout=self.opts.read_timeout_seconds,
        )

    def instance_types(self) -> Sequence[InstanceType]:
        return [t.to_instance_type() for t in self.opts.instance_types]

    def launch(self, req: LaunchRequest) -> list[Instance]:
        if not 1 <= req.count <= self.max_batch:
            raise ValueError(f"aws: launch count {req.count} outside 1..{self.max_batch}")
        subnet_id = self.opts.subnet_by_zone.get(req.zone)
        if subnet_id is None:
            raise ProviderConfigError(f"aws options: subnet_by_zone has no subnet for zone {req.zone}", provider=self.name)
        token = client_token(req.request_id)
        raw = self.pacer.call(
            "launch",
            lambda: self.adaptor.run_instances(
                client_token=token,
                count=req.count,
                instance_type=req.instance_type,
                zone=req.zone,
                subnet_id=subnet_id,
                tags=self.owner_tags({**req.tags, TAG_BATCH: req.request_id}),
                image_id=self.opts.image_id,
                launch_template=self.opts.launch_template.as_param() if self.opts.launch_template else None,
                security_group_ids=self.opts.security_group_ids,
                key_name=self.opts.key_name,
            ),
            cost={"launched_instances": req.count},
        )
        instances = [to_instance(r) for r in raw]
        if len(instances) < req.count:
            raise capacity_error(
                f"got {len(instances)} of {req.count}",
                code="InsufficientInstanceCapacity",
                zone=req.zone,
                instance_type=req.instance_type,
                created=instances,
            )
        return instances

    def describe(self, ids: Sequence[str]) -> list[Instance]:
        found: list[Instance] = []
        for chunk in chunked(list(dict.fromkeys(ids)), IDS_PER_CALL):
            found += self._describe_all([{"Name": "instance-id", "Values": chunk}])
        return found

    def list(self) -> list[Instance]:
        return self._describe_all(
            [
                {"Name": f"tag:{TAG_CLUSTER}", "Values": [self.cluster]},
                {"Name": "instance-state-name", "Values": LIVE_STATES},
            ]
        )

    def _describe_all(self, filters: list[dict[str, Any]]) -> list[Instance]:
        found: list[Instance] = []
        token: str | None = None
        while True:
            page, token = self.pacer.call(
                "describe", lambda: self.adaptor.describe_instances(filters=filters, next_token=token)
            )
            found += [to_instance(r) for r in page]
            if not token:
                return found

    def terminate(self, ids: Sequence[str], *, request_id: str) -> None:
        # TerminateInstances is idempotent by itself on EC2 (a terminated instance stays
        # terminated); request_id only shows in the log
        ids = list(dict.fromkeys(ids))
        if not ids:
            return
        found = self.describe(ids)
        self.refuse_not_owned(found)
        live = [i.id for i in found if i.state is not InstanceState.TERMINATED]
        log.info("aws terminate %s: %d asked, %d live", request_id, len(ids), len(live))
        for chunk in chunked(live, IDS_PER_CALL):
            self._terminate_chunk(chunk)

    def _terminate_chunk(self, chunk: list[str]) -> None:
        call = lambda ids: self.pacer.call(  # noqa: E731
            "terminate", lambda: self.adaptor.terminate_instances(ids), cost={"terminated_instances": len(ids)}
        )
        try:
            call(chunk)
        except InstanceNotFoundError:
            # one id vanished between describe and terminate and EC2 failed the whole
            # call: look again and terminate the rest (gone counts as done)
            again = self.describe(chunk)
            self.refuse_not_owned(again)
            rest = [i.id for i in again if i.state is not InstanceState.TERMINATED]
            if rest:
                call(rest)

    def close(self) -> None:
        self.adaptor.close()


def to_instance(raw: Mapping[str, Any]) -> Instance:
    return Instance(
        id=raw["InstanceId"],
        provider=AwsProvider.name,
        zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
        instance_type=raw.get("InstanceType", ""),
        state=STATES.get(raw.get("State", {}).get("Name", ""), InstanceState.PENDING),
        address=raw.get("PrivateIpAddress") or None,
        tags={t["Key"]: t["Value"] for t in raw.get("Tags", [])},
        created_at=raw.get("LaunchTime"),
    )


__all__ = ["AwsProvider", "AwsOptions"]
