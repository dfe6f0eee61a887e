"""Every boto3 call burst makes to EC2, and nothing else.

boto3 is imported here only, when the provider is built. botocore's own retries are
OFF (total_max_attempts=1): burst.provider.pacing does all retrying, so that (1) only
throttling and transient errors are retried, under one deadline, (2) every attempt
passes the client-side token bucket (a botocore retry would bypass it and spend the
account's EC2 bucket behind our back), and (3) the API calls burst reports are the API
calls EC2 received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from burst_providers.aws.errors import map_errors

#: pending .. stopped: everything but terminated
LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]


class Ec2Adaptor:
    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        connect_timeout: float = 5,
        read_timeout: float = 30,
    ):
        import logging

        import boto3
        from botocore.config import Config

        # botocore's DEBUG lines carry signed request headers (the access key id among
        # them); burst's own log says what each call did, so botocore keeps to warnings
        logging.getLogger("botocore").setLevel(logging.WARNING)
        logging.getLogger("boto3").setLevel(logging.WARNING)

        config = Config(
            region_name=region,
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=32,
        )
        # credentials: the standard chain (env, profile, SSO, instance role); never in options
        self.client = boto3.session.Session().client("ec2", endpoint_url=endpoint_url, config=config)

    def run_instances(
        self,
        *,
        client_token: str,
        count: int,
        instance_type: str,
        zone: str,
        subnet_id: str,
        tags: Mapping[str, str],
        image_id: str | None,
        launch_template: Mapping[str, str] | None,
        security_group_ids: Sequence[str],
        key_name: str | None,
    ) -> list[dict[str, Any]]:
        """One RunInstances: MinCount=1, MaxCount=count, so a short zone gives what it
        has instead of nothing. Tags are applied atomically at launch."""
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        params: dict[str, Any] = {
            "ClientToken": client_token,
            "MinCount": 1,
            "MaxCount": count,
            "InstanceType": instance_type,
            "SubnetId": subnet_id,
            "Placement": {"AvailabilityZone": zone},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tag_list}],
        }
        if image_id:
            params["ImageId"] = image_id
        if launch_template:
            params["LaunchTemplate"] = dict(launch_template)
        if security_group_ids:
            params["SecurityGroupIds"] = list(security_group_ids)
        if key_name:
            params["KeyName"] = key_name
        with map_errors("RunInstances", zone=zone, instance_type=instance_type):
            return self.client.run_instances(**params)["Instances"]

    def describe_instances(
        self, *, filters: Sequence[Mapping[str, Any]], next_token: str | None = None, max_results: int = 1000
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of DescribeInstances by filters (an instance-id filter, unlike
        InstanceIds, leaves unknown ids out instead of failing the whole call)."""
        params: dict[str, Any] = {"Filters": [dict(f) for f in filters], "MaxResults": max_results}
        if next_token:
            params["NextToken"] = next_token
        with map_errors("DescribeInstances"):
            page = self.client.describe_instances(**params)
        instances = [i for r in page.get("Reservations", []) for i in r.get("Instances", [])]
        return instances, page.get("NextToken") or None

    def terminate_instances(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        with map_errors("TerminateInstances"):
            return self.client.terminate_instances(InstanceIds=list(ids))["TerminatingInstances"]

    def close(self) -> None:
        self.client.close()
