"""Every aliyun-python-sdk-ecs (V1) call burst makes, and nothing else.

Moving to Alibaba's V2 SDK (alibabacloud_ecs20140526) means rewriting this file only:
the provider sees plain dicts in the API's own shapes and burst errors.

- The SDK is imported here only (lazily, burst.provider.lazy), when the provider is built.
- Its auto-retry is OFF: burst.provider.pacing does all retrying, paced by the
  client-side buckets, so the calls burst counts are the calls ECS received.
- https unless the config asks for plain http explicitly (the emulator in tests);
  V1 requests default to http, so the protocol is set on every request.
- Credentials come from the environment (ALIBABA_CLOUD_ACCESS_KEY_ID /
  ALIBABA_CLOUD_ACCESS_KEY_SECRET, optional ALIBABA_CLOUD_SECURITY_TOKEN for STS; the
  V1 SDK's own ALIYUN_ACCESS_KEY_ID / ALIYUN_ACCESS_KEY_SECRET also work); they are
  never in the options and never logged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from burst.provider.errors import ProviderAuthError, mask
from burst.provider.lazy import LazyImport
from burst_providers.aliyun.errors import PROVIDER, aliyun_errors

# The SDK logs every ServerException at ERROR before raising it (burst maps and reports
# each error itself; a throttled burst would flood the log), its debug lines and its
# vendored urllib3's carry request parameters and signed URLs (an STS token is one of
# their parameters). None of it may reach a log.
acs_client = LazyImport("aliyunsdkcore.client", provider=PROVIDER, package="aliyun-python-sdk-core",
                        quiet_loggers={"aliyunsdkcore": logging.CRITICAL})
acs_credentials = LazyImport("aliyunsdkcore.auth.credentials", provider=PROVIDER, package="aliyun-python-sdk-core")


def _request(action: str):
    """A new V1 request object of this ECS action (its module imported on first use)."""
    module = LazyImport(f"aliyunsdkecs.request.v20140526.{action}Request", provider=PROVIDER,
                        package="aliyun-python-sdk-ecs")
    return getattr(module, f"{action}Request")()


def _credential():
    for prefix in ("ALIBABA_CLOUD_", "ALIYUN_"):
        key_id = os.environ.get(prefix + "ACCESS_KEY_ID")
        secret = os.environ.get(prefix + "ACCESS_KEY_SECRET")
        if key_id and secret:
            token = os.environ.get(prefix + "SECURITY_TOKEN")
            mask(key_id, secret, token)
            if token:
                return acs_credentials.StsTokenCredential(key_id, secret, token)
            return acs_credentials.AccessKeyCredential(key_id, secret)
    raise ProviderAuthError(
        "aliyun: no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        provider=PROVIDER,
    )


class EcsAdaptor:
    def __init__(
        self,
        *,
        region: str,
        endpoint: str | None = None,
        scheme: str = "https",
        connect_timeout: float = 5,
        read_timeout: float = 30,
    ):
        credential = _credential()
        # its http debug logger sets its own level (DEBUG): only disabling silences it
        logging.getLogger("aliyunsdkcore.http.http_response").disabled = True
        with aliyun_errors("connect"):
            self.client = acs_client.AcsClient(
                region_id=region,
                credential=credential,
                auto_retry=False,
                connect_timeout=connect_timeout,
                timeout=read_timeout,
                pool_size=32,
            )
        self.region = region
        self.endpoint = endpoint
        self.scheme = scheme

    def _send(self, request, *, action: str, zone: str = "", instance_type: str = "") -> dict[str, Any]:
        request.set_protocol_type(self.scheme)
        if self.endpoint:
            request.set_endpoint(self.endpoint)
        request.set_accept_format("JSON")
        with aliyun_errors(action, zone=zone, instance_type=instance_type):
            body = self.client.do_action_with_exception(request)
        return json.loads(body)

    def run_instances(
        self,
        *,
        client_token: str,
        amount: int,
        min_amount: int,
        instance_type: str,
        zone: str,
        vswitch_id: str,
        security_group_id: str,
        image_id: str,
        tags: Mapping[str, str],
        key_pair_name: str | None = None,
        instance_name: str | None = None,
        system_disk_category: str | None = None,
    ) -> list[str]:
        """One RunInstances (pay-as-you-go, no public IP). MinAmount < Amount lets a short
        zone give what it has; the ids created are returned."""
        req = _request("RunInstances")
        req.set_ClientToken(client_token)
        req.set_Amount(amount)
        req.set_MinAmount(min_amount)
        req.set_InstanceType(instance_type)
        req.set_ZoneId(zone)
        req.set_VSwitchId(vswitch_id)
        req.set_SecurityGroupId(security_group_id)
        req.set_ImageId(image_id)
        req.set_InstanceChargeType("PostPaid")
        req.set_InternetMaxBandwidthOut(0)
        req.set_Tags([{"Key": k, "Value": v} for k, v in tags.items()])
        if key_pair_name:
            req.set_KeyPairName(key_pair_name)
        if instance_name:
            req.set_InstanceName(instance_name)
            req.set_UniqueSuffix(True)
        if system_disk_category:
            req.set_SystemDiskCategory(system_disk_category)
        reply = self._send(req, action="RunInstances", zone=zone, instance_type=instance_type)
        return list(reply.get("InstanceIdSets", {}).get("InstanceIdSet", []))

    def describe_instances(
        self,
        *,
        ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        next_token: str | None = None,
        max_results: int = 100,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of DescribeInstances: by ids (a JSON array of <= 100) and/or tags."""
        req = _request("DescribeInstances")
        req.set_MaxResults(max_results)
        if ids is not None:
            req.set_InstanceIds(json.dumps(list(ids)))
        if tags:
            req.set_Tags([{"Key": k, "Value": v} for k, v in tags.items()])
        if next_token:
            req.set_NextToken(next_token)
        reply = self._send(req, action="DescribeInstances")
        return list(reply.get("Instances", {}).get("Instance", [])), reply.get("NextToken") or None

    def delete_instances(self, ids: Sequence[str], *, client_token: str) -> None:
        """One DeleteInstances of <= 100 ids, Force=true (a Running instance needs it)."""
        req = _request("DeleteInstances")
        req.set_InstanceIds(list(ids))
        req.set_Force(True)
        req.set_ClientToken(client_token)
        self._send(req, action="DeleteInstances")

    def regions(self, *, connect_timeout: float, read_timeout: float) -> list[str]:
        """The region ids this account sees (one DescribeRegions, with these timeouts)."""
        req = _request("DescribeRegions")
        req.set_connect_timeout(connect_timeout)
        req.set_read_timeout(read_timeout)
        reply = self._send(req, action="DescribeRegions")
        return [r["RegionId"] for r in reply.get("Regions", {}).get("Region", [])]

    def close(self) -> None:
        self.client.session.close()
