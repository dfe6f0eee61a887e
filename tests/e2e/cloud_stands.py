"""The two clouds' stand-ins for end-to-end runs of the real `burst` command.

`aws`: burst's aws provider (real boto3, in the `burst` subprocess) against moto's
server behind stands.moto_ec2's front (EC2's ClientToken and MaxCount rules,
capacity faults, launch records, a reply delay). `aliyun`: the aliyun provider (real
aliyun-python-sdk-ecs) against burst's ECS emulator, signatures checked. Both servers
run in the test process on 127.0.0.1; the `burst` subprocesses reach them over HTTP
with fake credentials from the environment.

Import the fixtures into a test module: `from cloud_stands import cloud, cloud_burst, ...`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from burst.config import load_config
from burst.provider import Provider
from burst.provider.providers import ProviderSet
from stands.ecs_emulator import EcsEmulator
from stands.moto_ec2 import MotoEc2Server

CLUSTER = "e2e"
TIER = "cloud"
FAST_RETRY = {"base_seconds": 0.05, "max_seconds": 0.5, "deadline_seconds": 20}
ALIYUN_KEYS = {"LTAIe2efakekeyid000": "e2e-fake-secret-not-a-real-one"}

CONFIG = """
[cluster]
name = "{cluster}"
store = "{store}"
sla_seconds = 120
phase_timeout_seconds = 60

[[services]]
name = "web"
cpu = 1
memory_gib = 2

[[tiers]]
name = "{tier}"
provider = "{provider}"
ready_seconds = 30
concurrency = 8
balance_zones = false     # every host in the first zone: one launch batch, one zone to run out
[tiers.options]
{options}
[[tiers.instance_types]]
name = "{itype}"
cpu = 4
memory_gib = 8
price_per_hour = 0.2
zones = {zones}

[initialise]
kind = "recording"
[initialise.options]
seconds = 0.2

[swarm]
kind = "recording"
[swarm.options]
seconds = 0.1
"""


def toml_value(value: Any) -> str:
    """Enough TOML for provider options: strings, numbers, lists, inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")


def wait_for(what: str, check: Callable[[], Any], seconds: float = 30.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(every)


class AwsStand:
    provider = "aws"
    region = "us-east-1"
    zones = ["us-east-1a", "us-east-1b"]
    itype = "m5.large"

    def __init__(self, server: MotoEc2Server):
        import boto3

        self.server = server
        server.reset()
        self.ami, self.subnets = server.network(self.region, self.zones)
        self.ec2 = boto3.client("ec2", region_name=self.region, endpoint_url=server.endpoint_url)

    def options(self) -> dict:
        return {"region": self.region, "endpoint_url": self.server.endpoint_url, "image_id": self.ami,
                "subnet_by_zone": self.subnets, "retry": FAST_RETRY}

    def stock_out(self, zone: str) -> None:
        self.server.set_capacity(0, zone=zone)

    def delay_next_launch_reply(self, seconds: float) -> None:
        self.server.delay_next_reply(seconds, action="RunInstances")

    def launch_tokens(self) -> list[str]:
        """The ClientToken of every RunInstances the cloud carried out or replayed."""
        return [x["client_token"] for x in list(self.server.launches) if x["status"] == 200]

    def launch_calls(self, zone: str) -> int:
        """RunInstances calls answered for this zone, failed ones included."""
        return sum(1 for x in list(self.server.launches) if x["zone"] == zone)

    def _all(self) -> list[dict]:
        pages = self.ec2.get_paginator("describe_instances").paginate()
        return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]

    def created(self, cluster: str = CLUSTER) -> list[str]:
        """Every instance ever created with this cluster's tag (moto keeps terminated ones)."""
        return [i["InstanceId"] for i in self._all()
                if {"Key": "burst:cluster", "Value": cluster} in i.get("Tags", [])]

    def alive(self, instance_id: str) -> bool:
        found = [i for i in self._all() if i["InstanceId"] == instance_id]
        return bool(found) and found[0]["State"]["Name"] not in ("shutting-down", "terminated")

    def create_outside(self, tags: dict[str, str]) -> str:
        """An instance made directly on the cloud, as another team or the console would."""
        args: dict[str, Any] = {"ImageId": self.ami, "MinCount": 1, "MaxCount": 1, "InstanceType": self.itype,
                                "SubnetId": self.subnets[self.zones[0]]}
        if tags:
            args["TagSpecifications"] = [{"ResourceType": "instance",
                                          "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        return self.ec2.run_instances(**args)["Instances"][0]["InstanceId"]


class AliyunStand:
    provider = "aliyun"
    zones = ["cn-hangzhou-h", "cn-hangzhou-i"]
    itype = "ecs.g7.large"

    def __init__(self, emulator: EcsEmulator):
        self.emulator = emulator
        emulator.reset()

    def options(self) -> dict:
        opts = self.emulator.provider_options(self.zones, [], retry=FAST_RETRY)
        opts.pop("instance_types")  # the config's [[tiers.instance_types]] give them
        return opts

    def stock_out(self, zone: str) -> None:
        self.emulator.set_stock(0, zone=zone)

    def delay_next_launch_reply(self, seconds: float) -> None:
        self.emulator.delay_next_reply(seconds, action="RunInstances")

    def launch_tokens(self) -> list[str]:
        return [c.params.get("ClientToken", "") for c in list(self.emulator.calls)
                if c.action == "RunInstances" and not c.error]

    def launch_calls(self, zone: str) -> int:
        return sum(1 for c in list(self.emulator.calls) if c.action == "RunInstances" and c.params.get("ZoneId") == zone)

    def created(self, cluster: str = CLUSTER) -> list[str]:
        return [i.id for i in list(self.emulator.created) if i.tags.get("burst:cluster") == cluster]

    def alive(self, instance_id: str) -> bool:
        return self.emulator.status(instance_id) not in (None, "Stopping")

    def create_outside(self, tags: dict[str, str]) -> str:
        return self.emulator.create_instance(zone=self.zones[0], instance_type=self.itype, tags=tags)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoEc2Server]:
    with MotoEc2Server() as server:
        yield server


@pytest.fixture(scope="module")
def ecs_emulator() -> Iterator[EcsEmulator]:
    with EcsEmulator(access_keys=ALIYUN_KEYS, pending_seconds=0.2, starting_seconds=0.3) as emulator:
        yield emulator


@pytest.fixture(params=["aws", "aliyun"])
def cloud(request, monkeypatch):
    """One cloud's stand-in, reset, with fake credentials in the environment (the
    `burst` subprocesses inherit them)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    (key_id, secret), = ALIYUN_KEYS.items()
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    if request.param == "aws":
        return AwsStand(request.getfixturevalue("moto_server"))
    return AliyunStand(request.getfixturevalue("ecs_emulator"))


@pytest.fixture
def cloud_burst(make_burst, store_url, cloud):
    """The lead's `burst` runner (tests/e2e/conftest.py) with a config whose one tier
    is the cloud under test."""
    burst = make_burst()
    burst.config.write_text(CONFIG.format(
        cluster=CLUSTER, store=store_url, tier=TIER, provider=cloud.provider, itype=cloud.itype,
        zones=toml_value(cloud.zones),
        options="\n".join(f"{k} = {toml_value(v)}" for k, v in cloud.options().items())))
    return burst


@contextmanager
def tier_provider(burst) -> Iterator[Provider]:
    """The tier's provider as burst builds it from the config (for launching a leak)."""
    providers = ProviderSet(load_config(burst.config))
    try:
        yield providers.get(TIER)
    finally:
        providers.close()
