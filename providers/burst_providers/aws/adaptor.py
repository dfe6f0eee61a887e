"""Every boto3 call burst makes to EC2, and nothing else.

boto3 is imported (lazily, burst.provider.lazy) only when the provider is built.
botocore's own retries are OFF (total_max_attempts=1): burst.provider.pacing does all
retrying, so that (1) only throttling and transient errors are retried, under one
deadline, (2) every attempt passes the client-side token bucket (a botocore retry would
bypass it and spend the account's EC2 bucket behind our back), and (3) the API calls
burst reports are the API calls EC2 received.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from burst.provider.errors import mask
from burst.provider.lazy import LazyImport
from burst_providers.aws.errors import PROVIDER, aws_errors

# botocore's DEBUG lines carry signed request headers (the access key id among them);
# burst's own log says what each call did, so botocore keeps to warnings
boto3 = LazyImport("boto3", provider=PROVIDER, package="boto3",
                   quiet_loggers={"botocore": logging.WARNING, "boto3": logging.WARNING})
botocore_config = LazyImport("botocore.config", provider=PROVIDER, package="boto3")


class Ec2Adaptor:
    def __init__(self, *, region: str, endpoint_url: str | None = None, connect_timeout: float = 5,
                 read_timeout: float = 30):
        self.region, self.endpoint_url = region, endpoint_url
        # credentials: the standard chain (env, profile, SSO, instance role); never in options
        self.session = boto3.session.Session()
        known = {r for p in self.session.get_available_partitions() for r in
                 self.session.get_available_regions("ec2", partition_name=p)}
        #: a region botocore does not know, reached by its default endpoint: a connection
        #: error then means the region is wrong (see errors.map_client_error)
        self.unknown_region = region if endpoint_url is None and region not in known else ""
        self.config = botocore_config.Config(
            region_name=region,
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=32,
        )
        self.client = self._client(self.config)
        credentials = self.session.get_credentials()
        if credentials is not None and not hasattr(credentials, "refresh_needed"):  # static: no refresh call
            mask(credentials.access_key, credentials.secret_key, credentials.token)

    def _client(self, config):
        with self._errors("connect"):
            return self.session.client("ec2", endpoint_url=self.endpoint_url, config=config)

    def _errors(self, operation: str, **where: str):
        return aws_errors(operation, unknown_region=self.unknown_region, **where)

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
        with self._errors("RunInstances", zone=zone, instance_type=instance_type):
            return self.client.run_instances(**params)["Instances"]

    def describe_instances(
        self, *, filters: Sequence[Mapping[str, Any]], next_token: str | None = None, max_results: int = 1000
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of DescribeInstances by filters (an instance-id filter, unlike
        InstanceIds, leaves unknown ids out instead of failing the whole call)."""
        params: dict[str, Any] = {"Filters": [dict(f) for f in filters], "MaxResults": max_results}
        if next_token:
            params["NextToken"] = next_token
        with self._errors("DescribeInstances"):
            page = self.client.describe_instances(**params)
        instances = [i for r in page.get("Reservations", []) for i in r.get("Instances", [])]
        return instances, page.get("NextToken") or None

    def terminate_instances(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        with self._errors("TerminateInstances"):
            return self.client.terminate_instances(InstanceIds=list(ids))["TerminatingInstances"]

    def availability_zones(self, *, connect_timeout: float, read_timeout: float) -> list[str]:
        """The region's zone names, through a client of its own with these timeouts
        (botocore has no per-call timeout), closed afterwards."""
        config = self.config.merge(botocore_config.Config(connect_timeout=connect_timeout, read_timeout=read_timeout))
        probe = self._client(config)
        try:
            with self._errors("DescribeAvailabilityZones"):
                zones = probe.describe_availability_zones()["AvailabilityZones"]
        finally:
            probe.close()
        return [z["ZoneName"] for z in zones]

    def close(self) -> None:
        self.client.close()
