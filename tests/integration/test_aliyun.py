"""The aliyun provider through the real aliyun-python-sdk-ecs against burst's ECS emulator,
and the emulator's own API limits as the real SDK sees them."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest

from burst.provider import (
    InstanceState,
    InsufficientCapacityError,
    LaunchRequest,
    ProviderAuthError,
    ProviderConfigError,
    ProviderContext,
    ProviderError,
    QuotaExceededError,
    ThrottledError,
)
from stands.ecs_emulator import EcsEmulator
from burst_providers.aliyun import AliyunProvider

REGION = "cn-hangzhou"
ZONES = [f"{REGION}-h", f"{REGION}-i"]
TYPES = [{"name": "ecs.g7.large", "cpu": 2, "memory_gib": 8, "price_per_hour": 0.1, "zones": ZONES}]
KEYS = {"integ-key-id": "integ-key-secret"}
FAST_RETRY = {"base_seconds": 0.02, "max_seconds": 0.2, "deadline_seconds": 10}


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    (key_id, secret), = KEYS.items()
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)


@pytest.fixture
def emulator() -> Iterator[EcsEmulator]:
    with EcsEmulator(region=REGION, pending_seconds=0.1, starting_seconds=0.1, access_keys=KEYS) as emu:
        yield emu


@pytest.fixture
def options(emulator) -> dict:
    return emulator.provider_options(ZONES, TYPES, retry=FAST_RETRY)


@pytest.fixture
def provider(options, tmp_path) -> Iterator[AliyunProvider]:
    p = AliyunProvider(ProviderContext("integ", tmp_path), options)
    try:
        yield p
    finally:
        p.close()


def req(request_id: str, count: int = 2, zone: str = ZONES[0]) -> LaunchRequest:
    return LaunchRequest(request_id=request_id, count=count, instance_type="ecs.g7.large", zone=zone,
                         tags={"burst:burst-id": "b-integ"})


def sdk_call(emulator: EcsEmulator, request) -> dict:
    """One call through the plain V1 SDK, as another tool would make it."""
    from aliyunsdkcore.client import AcsClient

    client = AcsClient(*next(iter(KEYS.items())), region_id=REGION, auto_retry=False)
    request.set_endpoint(emulator.endpoint)
    request.set_protocol_type("http")
    return json.loads(client.do_action_with_exception(request))


def test_launch_sends_the_real_parameters(provider, emulator):
    provider.launch(req("b-integ-0", count=3))
    (call,) = [c for c in emulator.calls if c.action == "RunInstances"]
    p = call.params
    assert (p["Amount"], p["MinAmount"], p["ClientToken"]) == ("3", "1", "b-integ-0")
    assert (p["ZoneId"], p["VSwitchId"], p["InstanceChargeType"]) == (ZONES[0], f"vsw-{ZONES[0]}", "PostPaid")
    tags = {p[f"Tag.{n}.Key"]: p[f"Tag.{n}.Value"] for n in (1, 2)}
    assert tags == {"burst:cluster": "integ", "burst:burst-id": "b-integ"}
    assert "AccessKeyId" not in p and "Signature" not in p  # records never hold credentials


def test_instances_go_pending_starting_running(provider, emulator):
    emulator.pending_seconds, emulator.starting_seconds = 0.3, 0.3
    (inst,) = provider.launch(req("b-integ-1", count=1))
    assert inst.state is InstanceState.PENDING and emulator.status(inst.id) == "Pending"
    time.sleep(0.35)
    assert emulator.status(inst.id) == "Starting" and provider.get(inst.id).state is InstanceState.PENDING
    time.sleep(0.35)
    got = provider.get(inst.id)
    assert got.state is InstanceState.RUNNING and got.address and got.address.startswith("127.78.")


def test_throttling_is_retried_and_never_reaches_the_caller(provider, emulator):
    emulator.throttle_next(3, actions=["RunInstances"])
    assert len(provider.launch(req("b-integ-2"))) == 2
    assert emulator.count("RunInstances", errors=True) == 3
    assert emulator.count("RunInstances", errors=False) == 1
    assert len(emulator.instances) == 2


def test_throttling_past_the_deadline_is_a_throttled_error(options, tmp_path, emulator):
    provider = AliyunProvider(ProviderContext("integ", tmp_path),
                              {**options, "retry": {"base_seconds": 0.05, "max_seconds": 0.1, "deadline_seconds": 0.5}})
    emulator.throttle_next(1000)
    with pytest.raises(ThrottledError):
        provider.list()


def test_stock_out_in_the_first_zone_fails_fast_with_the_zone(provider, emulator):
    emulator.set_stock(0, zone=ZONES[0])
    started = time.monotonic()
    with pytest.raises(InsufficientCapacityError) as caught:
        provider.launch(req("b-integ-3", zone=ZONES[0]))
    assert time.monotonic() - started < 1
    assert emulator.count("RunInstances") == 1  # one call, no retry
    assert caught.value.zone == ZONES[0] and caught.value.code == "OperationDenied.NoStock"
    made = provider.launch(req("b-integ-3-z1", zone=ZONES[1]))  # the core's next zone
    assert [i.zone for i in made] == [ZONES[1]] * 2


@pytest.mark.parametrize(
    "code, error",
    [
        ("QuotaExceed.AfterpayInstance", QuotaExceededError),
        ("Zone.NotOnSale", InsufficientCapacityError),
        ("InvalidResourceType.NotSupported", InsufficientCapacityError),
        ("InvalidImageId.NotFound", ProviderConfigError),
        ("Forbidden.RAM", ProviderAuthError),
    ],
)
def test_error_codes_map_without_retry(provider, emulator, code, error):
    emulator.fail_next("RunInstances", code, "injected", status=403)
    with pytest.raises(error):
        provider.launch(req("b-integ-4"))
    assert emulator.count("RunInstances") == 1


def test_a_server_error_is_transient_and_retried(provider, emulator):
    emulator.fail_next("DeleteInstances", "InternalError", "The request processing has failed.", status=500)
    made = provider.launch(req("b-integ-5"))
    provider.terminate([i.id for i in made], request_id="t-integ-5")
    assert emulator.count("DeleteInstances") == 2 and provider.list() == []


def test_many_instances_describe_and_delete_in_chunks_of_100(provider, emulator):
    ids = []
    for batch in range(3):
        ids += [i.id for i in provider.launch(req(f"b-integ-6-{batch}", count=100 if batch < 2 else 50))]
    emulator.clear_calls()
    assert sorted(i.id for i in provider.describe(ids)) == sorted(ids)
    assert emulator.count("DescribeInstances") == 3
    emulator.clear_calls()
    assert len(provider.list()) == 250
    assert emulator.count("DescribeInstances") == 3  # 100 + 100 + 50 through NextToken
    emulator.clear_calls()
    provider.terminate(ids, request_id="t-integ-6")
    assert emulator.count("DeleteInstances") == 3
    assert all(c.params["Force"].lower() == "true" for c in emulator.calls if c.action == "DeleteInstances")
    assert emulator.instances == {}


def test_bad_signature_is_refused(options, tmp_path, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret")
    provider = AliyunProvider(ProviderContext("integ", tmp_path), options)
    with pytest.raises(ProviderAuthError):
        provider.list()


def test_missing_credentials_are_an_auth_error(options, tmp_path, monkeypatch):
    for var in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ProviderAuthError, match="ALIBABA_CLOUD_ACCESS_KEY_ID"):
        AliyunProvider(ProviderContext("integ", tmp_path), options)


@pytest.mark.parametrize(
    "change, key",
    [
        ({"scheme": "http", "endpoint": None}, "scheme"),
        ({"vswitch_by_zone": {}}, "vswitch_by_zone"),
        ({"image_id": ""}, "image_id"),
        ({"scheme": "ftp"}, "scheme"),
        ({"vswitch_by_zone": {ZONES[0]: "vsw-1"}}, "no vswitch_by_zone entry"),
    ],
)
def test_bad_options_name_the_key(options, tmp_path, change, key):
    with pytest.raises(ProviderConfigError, match=key):
        AliyunProvider(ProviderContext("integ", tmp_path), {**options, **change})


# --- the emulator's limits, through the plain SDK --------------------------------------


def run_request(amount: int, min_amount: int | None = None, token: str | None = None):
    from aliyunsdkecs.request.v20140526.RunInstancesRequest import RunInstancesRequest

    r = RunInstancesRequest()
    for setter, value in [("ImageId", "img"), ("InstanceType", "ecs.g7.large"), ("SecurityGroupId", "sg"),
                          ("VSwitchId", "vsw"), ("ZoneId", ZONES[0]), ("Amount", amount)]:
        getattr(r, f"set_{setter}")(value)
    if min_amount is not None:
        r.set_MinAmount(min_amount)
    if token:
        r.set_ClientToken(token)
    return r


def test_emulator_limits_amount_and_max_results(emulator):
    from aliyunsdkcore.acs_exception.exceptions import ServerException
    from aliyunsdkecs.request.v20140526.DescribeInstancesRequest import DescribeInstancesRequest

    with pytest.raises(ServerException) as caught:
        sdk_call(emulator, run_request(101))
    assert caught.value.get_error_code() == "InvalidParameter.Amount" and caught.value.get_http_status() == 400
    d = DescribeInstancesRequest()
    d.set_MaxResults(101)
    with pytest.raises(ServerException):
        sdk_call(emulator, d)
    d = DescribeInstancesRequest()
    d.set_InstanceIds(json.dumps([f"i-{n}" for n in range(101)]))
    with pytest.raises(ServerException):
        sdk_call(emulator, d)


def test_emulator_client_token_and_min_amount(emulator):
    from aliyunsdkcore.acs_exception.exceptions import ServerException

    first = sdk_call(emulator, run_request(3, token="tok-1"))["InstanceIdSets"]["InstanceIdSet"]
    again = sdk_call(emulator, run_request(3, token="tok-1"))["InstanceIdSets"]["InstanceIdSet"]
    assert first == again and len(emulator.instances) == 3
    emulator.set_stock(2, zone=ZONES[0])
    with pytest.raises(ServerException) as caught:
        sdk_call(emulator, run_request(3, min_amount=3))
    assert caught.value.get_error_code() == "OperationDenied.NoStock" and len(emulator.instances) == 3
    partial = sdk_call(emulator, run_request(3, min_amount=1))["InstanceIdSets"]["InstanceIdSet"]
    assert len(partial) == 2


def test_emulator_delete_needs_force_for_a_running_instance(emulator):
    from aliyunsdkcore.acs_exception.exceptions import ServerException
    from aliyunsdkecs.request.v20140526.DeleteInstancesRequest import DeleteInstancesRequest

    (iid,) = sdk_call(emulator, run_request(1))["InstanceIdSets"]["InstanceIdSet"]
    d = DeleteInstancesRequest()
    d.set_InstanceIds([iid])
    with pytest.raises(ServerException) as caught:
        sdk_call(emulator, d)
    assert caught.value.get_error_code() == "IncorrectInstanceStatus" and emulator.status(iid)
    d.set_InstanceIds(["i-nonexistent"])
    d.set_Force(True)
    with pytest.raises(ServerException) as caught:
        sdk_call(emulator, d)
    assert caught.value.get_error_code() == "InvalidInstanceId.NotFound" and caught.value.get_http_status() == 404


def test_emulator_hooks_back_each_instance(tmp_path):
    created, deleted = [], []

    def on_create(inst):
        created.append(inst.id)
        return f"10.77.0.{len(created)}"

    with EcsEmulator(region=REGION, on_create=on_create, on_delete=lambda inst: deleted.append(inst.id),
                     pending_seconds=0, starting_seconds=0) as emu:
        provider = AliyunProvider(ProviderContext("integ", tmp_path), emu.provider_options(ZONES, TYPES))
        made = provider.launch(req("b-hooks", count=2))
        assert created == [i.id for i in made]
        assert sorted(i.address for i in provider.describe(created)) == ["10.77.0.1", "10.77.0.2"]
        provider.terminate(created, request_id="t-hooks")
        assert sorted(deleted) == sorted(created)


def test_emulator_admin_http_faults_from_another_process(provider, emulator):
    def post(path: str, body: dict) -> dict:
        r = urllib.request.Request(f"http://{emulator.endpoint}{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(r, timeout=5) as resp:
            return json.loads(resp.read())

    post("/_emulator/faults", {"stock": [{"count": 0, "zone": ZONES[0]}]})
    with pytest.raises(InsufficientCapacityError):
        provider.launch(req("b-admin"))
    foreign = post("/_emulator/instances", {"zone": ZONES[1], "tags": {"burst:cluster": "someone-else"}})["InstanceId"]
    assert emulator.status(foreign) is not None
    assert emulator.instances[foreign].tags == {"burst:cluster": "someone-else"}
    with urllib.request.urlopen(f"http://{emulator.endpoint}/_emulator/calls", timeout=5) as resp:
        calls = json.loads(resp.read())["calls"]
    assert [c["error"] for c in calls if c["action"] == "RunInstances"] == ["OperationDenied.NoStock"]


def test_idempotent_parameter_mismatch_style_errors_are_fatal(provider, emulator):
    emulator.fail_next("RunInstances", "IdempotentParameterMismatch", "The request uses the same client token.", status=400)
    with pytest.raises(ProviderError) as caught:
        provider.launch(req("b-integ-7"))
    assert not caught.value.retryable and emulator.count("RunInstances") == 1


def test_the_example_config_builds_this_provider_through_the_registry():
    from pathlib import Path

    from burst.config import load_config
    from burst.provider.providers import ProviderSet

    config = load_config(Path(__file__).parents[2] / "docs/examples/aliyun.toml")
    providers = ProviderSet(config)
    try:
        provider = providers.get("aliyun-hz")  # no API call is made by building it
        assert isinstance(provider, AliyunProvider)
        assert provider.opts.scheme == "https" and provider.adaptor.scheme == "https"
        assert [t.name for t in provider.instance_types()] == ["ecs.g7.xlarge", "ecs.g6.xlarge"]
    finally:
        providers.close()


def test_credentials_never_reach_a_log_line_or_the_output(provider, emulator, caplog, capfd, monkeypatch):
    import logging

    monkeypatch.setenv("DEBUG", "sdk")  # the SDK's own http debug switch
    caplog.set_level(logging.DEBUG)
    emulator.throttle_next(1)
    emulator.fail_next("DeleteInstances", "InternalError", status=500)
    made = provider.launch(req("b-secrets"))
    provider.terminate([i.id for i in made], request_id="t-secrets")
    out, err = capfd.readouterr()
    (key_id, secret), = KEYS.items()
    for text in (caplog.text, out, err, json.dumps([c.params for c in emulator.calls])):
        assert secret not in text and key_id not in text
