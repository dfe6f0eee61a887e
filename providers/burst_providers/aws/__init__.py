"""AWS EC2 provider: the options (`AwsOptions`, a tier's `[tiers.options]`), the EC2
calls (adaptor.py, boto3 imported lazily) and the error map (errors.py). Launch,
describe, list, terminate and check are burst.provider.cloud's, the same as aliyun's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from burst.provider import TAG_CLUSTER, Instance, InstanceState, LaunchRequest, ProviderConfigError
from burst.provider.cloud import CloudOptions, CloudProvider
from burst.provider.pacing import RateLimit

STATES = {
    "pending": InstanceState.PENDING,
    "running": InstanceState.RUNNING,
    "shutting-down": InstanceState.STOPPING,
    "stopping": InstanceState.STOPPING,
    "stopped": InstanceState.STOPPING,
    "terminated": InstanceState.TERMINATED,
}
LIVE_STATES = [name for name, state in STATES.items() if state is not InstanceState.TERMINATED]


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


class AwsOptions(CloudOptions):
    #: ENVIRONMENT.md: RunInstances request bucket 5 refill 2/s, resource bucket 1000
    #: instances refill 2/s; TerminateInstances 1000 instances refill 20/s; describe 100 refill 20/s.
    default_limits: ClassVar[dict[str, RateLimit]] = {
        "launch": RateLimit(burst=5, per_second=2),
        "launched_instances": RateLimit(burst=1000, per_second=2),
        "describe": RateLimit(burst=100, per_second=20),
        "terminate": RateLimit(burst=100, per_second=20),
        "terminated_instances": RateLimit(burst=1000, per_second=20),
    }
    zone_field: ClassVar[str] = "subnet_by_zone"

    image_id: str | None = None
    launch_template: LaunchTemplate | None = None
    subnet_by_zone: dict[str, str] = Field(min_length=1)
    security_group_ids: list[str] = Field(default_factory=list)
    key_name: str | None = None
    #: for tests against moto only; production uses the region's endpoint
    endpoint_url: str | None = None

    @model_validator(mode="after")
    def _one_image(self) -> "AwsOptions":
        if bool(self.image_id) == bool(self.launch_template):
            raise ValueError("give exactly one of image_id or launch_template")
        return self


DEFAULT_LIMITS = AwsOptions.default_limits


class AwsProvider(CloudProvider):
    """EC2 hosts. Launch: one RunInstances per batch of <= 100 (MinCount 1, MaxCount n),
    ClientToken = request id, tags applied at launch. Describe: instance-id filters (an
    unknown id is left out, not an error), 100 ids a call, NextToken. Terminate: owned
    only, TerminateInstances of <= 100 ids (idempotent on EC2 by itself). Check:
    DescribeAvailabilityZones, and every configured zone must be in the region."""

    name = "aws"
    options_model = AwsOptions
    partial_capacity_code = "InsufficientInstanceCapacity"
    opts: AwsOptions

    def _connect(self):
        from burst_providers.aws.adaptor import Ec2Adaptor

        return Ec2Adaptor(region=self.opts.region, endpoint_url=self.opts.endpoint_url,
                          connect_timeout=self.opts.connect_timeout_seconds,
                          read_timeout=self.opts.read_timeout_seconds)

    def _run_instances(self, req: LaunchRequest, *, network: str, client_token: str,
                       tags: Mapping[str, str]) -> list[Instance]:
        raw = self.adaptor.run_instances(
            client_token=client_token, count=req.count, instance_type=req.instance_type, zone=req.zone,
            subnet_id=network, tags=tags, image_id=self.opts.image_id,
            launch_template=self.opts.launch_template.as_param() if self.opts.launch_template else None,
            security_group_ids=self.opts.security_group_ids, key_name=self.opts.key_name,
        )  # fmt: skip
        return [to_instance(r) for r in raw]

    def _describe_page(self, ids: Sequence[str] | None, next_token: str | None) -> tuple[list[Instance], str | None]:
        if ids is not None:
            filters = [{"Name": "instance-id", "Values": list(ids)}]
        else:
            filters = [{"Name": f"tag:{TAG_CLUSTER}", "Values": [self.cluster]},
                       {"Name": "instance-state-name", "Values": LIVE_STATES}]
        page, token = self.adaptor.describe_instances(filters=filters, next_token=next_token)
        return [to_instance(r) for r in page], token

    def _terminate_call(self, ids: Sequence[str], *, client_token: str) -> None:
        # TerminateInstances takes no token: it is idempotent by itself on EC2
        self.adaptor.terminate_instances(ids)

    def _probe(self, *, connect_timeout: float, read_timeout: float) -> None:
        zones = self.adaptor.availability_zones(connect_timeout=connect_timeout, read_timeout=read_timeout)
        missing = sorted(set(self.opts.subnet_by_zone) - set(zones))
        if missing:
            raise ProviderConfigError(f"aws: zone(s) {missing} are not in region {self.opts.region} "
                                      f"(it has {', '.join(zones)})", provider=self.name)


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
