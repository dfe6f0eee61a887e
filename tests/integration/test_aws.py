"""The aws provider through real boto3 against moto's server (stands.moto_ec2).

Faults the server cannot make are injected with a botocore `before-send` hook on the
provider's own client: it answers with EC2's real error XML, so botocore's real parser
and retry logic run. Every test checks the number of calls that were sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from burst.provider import (
    InstanceState,
    InsufficientCapacityError,
    LaunchRequest,
    ProviderAuthError,
    ProviderConfigError,
    ProviderContext,
    QuotaExceededError,
    ThrottledError,
)
from stands.moto_ec2 import MotoEc2Server, ec2_error_response
from burst_providers.aws import AwsProvider

REGION = "us-east-1"
ZONES = [f"{REGION}a", f"{REGION}b"]
TYPES = [{"name": "m5.large", "cpu": 2, "memory_gib": 8, "price_per_hour": 0.096, "zones": ZONES}]
FAST_RETRY = {"base_seconds": 0.02, "max_seconds": 0.2, "deadline_seconds": 10}


@pytest.fixture(scope="module")
def server() -> Iterator[MotoEc2Server]:
    with pytest.MonkeyPatch.context() as env:
        # fake credentials for the standard chain (moto accepts any); no instance metadata
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        with MotoEc2Server() as srv:
            yield srv


@pytest.fixture
def options(server) -> dict:
    server.reset()
    ami, subnets = server.network(REGION, ZONES)
    return server.provider_options(REGION, ami, subnets, TYPES, retry=FAST_RETRY)


@pytest.fixture
def provider(options, tmp_path) -> Iterator[AwsProvider]:
    p = AwsProvider(ProviderContext("integ", tmp_path), options)
    try:
        yield p
    finally:
        p.close()


class Inject:
    """A before-send hook on the provider's client: the first `n` sends of `operation`
    get this error; every send is counted."""

    def __init__(self, provider: AwsProvider, operation: str, code: str, message: str, *, n: int, status: int = 400):
        self.sent = 0
        self.n, self.code, self.message, self.status = n, code, message, status
        provider.adaptor.client.meta.events.register(f"before-send.ec2.{operation}", self)

    def __call__(self, request, **kwargs):
        self.sent += 1
        if self.sent <= self.n:
            return ec2_error_response("https://ec2.amazonaws.com/", self.code, self.message, self.status)
        return None  # send for real


def req(request_id: str, count: int = 2, zone: str = ZONES[0]) -> LaunchRequest:
    return LaunchRequest(request_id=request_id, count=count, instance_type="m5.large", zone=zone,
                         tags={"burst:burst-id": "b-integ"})


def test_throttling_is_retried_with_backoff_and_never_reaches_the_caller(provider, server):
    hook = Inject(provider, "RunInstances", "RequestLimitExceeded", "Request limit exceeded.", n=3, status=503)
    made = provider.launch(req("b-integ-0"))
    assert len(made) == 2
    # 3 throttled sends, then one that reached moto: pacing retried, botocore did not
    assert hook.sent == 4
    assert server.count("RunInstances") == 1


def test_throttling_past_the_deadline_reaches_the_caller_as_throttled(options, tmp_path):
    provider = AwsProvider(ProviderContext("integ", tmp_path),
                           {**options, "retry": {"base_seconds": 0.05, "max_seconds": 0.1, "deadline_seconds": 0.5}})
    hook = Inject(provider, "RunInstances", "RequestLimitExceeded", "Request limit exceeded.", n=1000)
    with pytest.raises(ThrottledError):
        provider.launch(req("b-integ-1"))
    assert 2 <= hook.sent < 100


def test_stock_out_in_the_first_zone_fails_fast_with_the_zone(provider, server):
    hook = Inject(provider, "RunInstances", "InsufficientInstanceCapacity",
                  "We currently do not have sufficient m5.large capacity in the Availability Zone you requested.", n=1)
    started = time.monotonic()
    with pytest.raises(InsufficientCapacityError) as caught:
        provider.launch(req("b-integ-2", zone=ZONES[0]))
    assert time.monotonic() - started < 1
    assert hook.sent == 1  # one call: no retry anywhere
    assert caught.value.zone == ZONES[0] and caught.value.code == "InsufficientInstanceCapacity"
    assert caught.value.created == []
    made = provider.launch(req("b-integ-2-z1", zone=ZONES[1]))  # the core's next zone
    assert [i.zone for i in made] == [ZONES[1]] * 2


def test_stock_out_from_the_server_maps_the_same_way(provider, server):
    server.set_capacity(0, zone=ZONES[0])
    with pytest.raises(InsufficientCapacityError) as caught:
        provider.launch(req("b-integ-3"))
    assert caught.value.zone == ZONES[0] and server.count("RunInstances") == 1


@pytest.mark.parametrize("code", ["VcpuLimitExceeded", "InstanceLimitExceeded"])
def test_quota_errors_are_reported_as_quota(provider, code):
    hook = Inject(provider, "RunInstances", code, "You have requested more vCPU capacity than your limit.", n=1)
    with pytest.raises(QuotaExceededError):
        provider.launch(req("b-integ-4"))
    assert hook.sent == 1


def test_a_transient_error_on_terminate_is_retried(provider, server):
    made = provider.launch(req("b-integ-5"))
    hook = Inject(provider, "TerminateInstances", "InternalError", "An internal error has occurred.", n=1, status=500)
    provider.terminate([i.id for i in made], request_id="t-integ-5")
    assert hook.sent == 2
    assert provider.list() == []


def test_many_instances_describe_in_chunks_of_100(provider, server):
    ids = []
    for batch in range(3):
        ids += [i.id for i in provider.launch(req(f"b-integ-6-{batch}", count=100 if batch < 2 else 50))]
    server.clear_calls()
    found = provider.describe(ids)
    assert sorted(i.id for i in found) == sorted(ids)
    assert server.count("DescribeInstances") == 3
    assert len(provider.list()) == 250
    server.clear_calls()
    provider.terminate(ids, request_id="t-integ-6")
    assert server.count("TerminateInstances") == 3
    assert all(i.state is InstanceState.TERMINATED for i in provider.describe(ids))


@pytest.mark.parametrize(
    "change, key",
    [
        ({"subnet_by_zone": {}}, "subnet_by_zone"),
        ({"launch_template": {"name": "lt"}}, "image_id or launch_template"),
        ({"rate_limits": {"lunch": {"burst": 1, "per_second": 1}}}, "rate_limits"),
        ({"max_launch_per_call": 500}, "max_launch_per_call"),
        ({"subnet_by_zone": {ZONES[0]: "subnet-1"}}, "no subnet_by_zone entry"),
    ],
)
def test_bad_options_name_the_key(options, tmp_path, change, key):
    with pytest.raises(ProviderConfigError, match=key):
        AwsProvider(ProviderContext("integ", tmp_path), {**options, **change})


def test_missing_credentials_are_an_auth_error(options, tmp_path, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    provider = AwsProvider(ProviderContext("integ", tmp_path), options)
    with pytest.raises(ProviderAuthError):
        provider.list()


def test_the_example_config_builds_this_provider_through_the_registry():
    from pathlib import Path

    from burst.config import load_config
    from burst.provider.providers import ProviderSet

    config = load_config(Path(__file__).parents[2] / "docs/examples/aws.toml")
    providers = ProviderSet(config)
    try:
        provider = providers.get("aws-sg")  # no API call is made by building it
        assert isinstance(provider, AwsProvider)
        assert [t.name for t in provider.instance_types()] == ["m6i.xlarge", "m5.xlarge"]
        assert provider.pacer.buckets["launch"].capacity == 5
    finally:
        providers.close()


def test_credentials_never_reach_a_log_line(provider, caplog, capfd):
    import logging

    caplog.set_level(logging.DEBUG)
    Inject(provider, "RunInstances", "RequestLimitExceeded", "Request limit exceeded.", n=1, status=503)
    made = provider.launch(req("b-secrets"))
    provider.terminate([i.id for i in made], request_id="t-secrets")
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err):
        assert "Credential=testing" not in text and "AWS4-HMAC-SHA256" not in text
