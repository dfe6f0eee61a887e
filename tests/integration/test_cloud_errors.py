"""Both cloud providers, through their real SDKs, with the endpoint broken every way it
breaks in production: each failure is classified at the boundary, and no credential
ever reaches an error's text, its traceback, a log record or the output.

Endpoints: a closed loopback port (connection refused), a loopback socket that accepts
and never answers (timeout), the stand-ins answering 5xx (the ECS emulator's fault
knob, a botocore before-send hook for moto), and the stand-ins refusing the credential
(the emulator's key check, moto's IAM auth).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator

import pytest

from burst.provider import (
    LaunchRequest,
    ProviderAuthError,
    ProviderConfigError,
    ProviderContext,
    ProviderError,
    TransientProviderError,
)
from stands.ecs_emulator import EcsEmulator
from stands.moto_ec2 import MotoEc2Server, ec2_error_response
from burst.wait import wait_until

pytestmark = pytest.mark.timeout(300)

# distinctive values: any of them (or its percent-encoded form) in a text is a leak
AWS_KEY_ID = "AKIABURSTLEAKTEST001"
AWS_SECRET = "burstAwsSecret/LeakTest+0123456789abcdefXYZ"
AWS_TOKEN = "FwoGZXIvYXdzEBurstSessionToken/" + "Qm9vbQ" * 30 + "+end=="
ALI_KEY_ID = "LTAI5tBurstLeakTest0001"
ALI_SECRET = "burstAliyunSecretLeakTest9876"
ALI_TOKEN = "CAISburstStsToken/" + "c3RzdG9rZW4" * 20 + "+tail=="
SECRETS = [AWS_KEY_ID, AWS_SECRET, AWS_TOKEN, ALI_KEY_ID, ALI_SECRET, ALI_TOKEN]

REGION_AWS, ZONES_AWS = "us-east-1", ["us-east-1a", "us-east-1b"]
REGION_ALI, ZONES_ALI = "cn-hangzhou", ["cn-hangzhou-h", "cn-hangzhou-i"]
TYPE = {"cpu": 2, "memory_gib": 8, "price_per_hour": 0.1}
#: a short retry deadline: a retried failure still reaches the test in about a second
QUICK = {"retry": {"base_seconds": 0.02, "max_seconds": 0.1, "deadline_seconds": 1.0},
         "connect_timeout_seconds": 0.5, "read_timeout_seconds": 0.5}
#: for a stand-in that does answer: its answer (moto checking a signature on a loaded
#: machine) must not turn into a timeout
ANSWERING = {"connect_timeout_seconds": 5, "read_timeout_seconds": 20}


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    for name, value in [("AWS_ACCESS_KEY_ID", AWS_KEY_ID), ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
                        ("AWS_SESSION_TOKEN", AWS_TOKEN), ("AWS_EC2_METADATA_DISABLED", "true"),
                        ("ALIBABA_CLOUD_ACCESS_KEY_ID", ALI_KEY_ID), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ALI_SECRET),
                        ("ALIBABA_CLOUD_SECURITY_TOKEN", ALI_TOKEN), ("DEBUG", "sdk")]:  # DEBUG=sdk: the SDK's own http debug
        monkeypatch.setenv(name, value)


# --- endpoints that fail --------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentServer:
    """Accepts connections on loopback and never answers; records each connection and
    whether the client closed it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.closed_by_client = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock, *self.accepted], [], [], 0.05)
            for s in ready:
                if s is self.sock:
                    self.accepted.append(self.sock.accept()[0])
                elif not s.recv(65536):  # the request is read and dropped; b"" is the client's close
                    self.accepted.remove(s)
                    s.close()
                    self.closed_by_client += 1

    def __enter__(self) -> "SilentServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for s in [*self.accepted, self.sock]:
            s.close()


# --- the providers, pointed at an endpoint --------------------------------------------


def aws_provider(tmp_path, endpoint_url: str, **extra):
    from burst_providers.aws import AwsProvider

    options = {"region": REGION_AWS, "endpoint_url": endpoint_url, "image_id": "ami-12345678",
               "subnet_by_zone": {z: f"subnet-{z}" for z in ZONES_AWS},
               "instance_types": [{"name": "m5.large", "zones": ZONES_AWS, **TYPE}], **QUICK, **extra}
    return AwsProvider(ProviderContext("leaks", tmp_path), options)


def aliyun_provider(tmp_path, endpoint: str, **extra):
    from burst_providers.aliyun import AliyunProvider

    options = {"region": REGION_ALI, "endpoint": endpoint, "scheme": "http", "image_id": "img",
               "security_group_id": "sg", "vswitch_by_zone": {z: f"vsw-{z}" for z in ZONES_ALI},
               "instance_types": [{"name": "ecs.g7.large", "zones": ZONES_ALI, **TYPE}], **QUICK, **extra}
    return AliyunProvider(ProviderContext("leaks", tmp_path), options)


def provider_at(cloud: str, tmp_path, port: int, **extra):
    """A provider of `cloud` whose endpoint is this loopback port."""
    if cloud == "aws":
        return aws_provider(tmp_path, f"http://127.0.0.1:{port}", **extra)
    return aliyun_provider(tmp_path, f"127.0.0.1:{port}", **extra)


class Status500:
    """before-send on every EC2 operation of the provider's clients (its own, and through
    its session, those it makes later, e.g. check's): EC2's InternalError, HTTP 500."""

    def __init__(self, provider) -> None:
        self.sent = 0
        provider.adaptor.client.meta.events.register("before-send.ec2", self)
        provider.adaptor.session.events.register("before-send.ec2", self)

    def __call__(self, request, **kwargs):
        self.sent += 1
        return ec2_error_response(request.url, "InternalError", "An internal error has occurred", 500)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoEc2Server]:
    with MotoEc2Server() as server:
        yield server


@contextlib.contextmanager
def broken(cloud: str, mode: str, tmp_path, moto: MotoEc2Server) -> Iterator:
    """A provider of `cloud` whose endpoint fails in `mode`."""
    if mode == "refused":
        yield provider_at(cloud, tmp_path, closed_port())
    elif mode == "timeout":
        with SilentServer() as silent:
            yield provider_at(cloud, tmp_path, silent.port)
    elif mode == "5xx" and cloud == "aws":
        provider = aws_provider(tmp_path, moto.endpoint_url, **ANSWERING)
        Status500(provider)
        yield provider
    elif mode == "5xx":
        with EcsEmulator(region=REGION_ALI) as emu:
            for action in ("RunInstances", "DescribeInstances", "DeleteInstances", "DescribeRegions"):
                emu.fail_next(action, "InternalError", "The request processing has failed.", status=500, n=1000)
            yield aliyun_provider(tmp_path, emu.endpoint, **ANSWERING)
    elif mode == "auth" and cloud == "aws":
        moto.require_auth(True)  # moto never issued AWS_KEY_ID: EC2's AuthFailure
        try:
            yield aws_provider(tmp_path, moto.endpoint_url, **ANSWERING)
        finally:
            moto.require_auth(False)
    else:  # auth, aliyun: the emulator knows another key only
        with EcsEmulator(region=REGION_ALI, access_keys={"LTAI5tSomeoneElse00001": "their-secret"}) as emu:
            yield aliyun_provider(tmp_path, emu.endpoint, **ANSWERING)


OPERATIONS: dict[str, Callable] = {
    "launch": lambda p: p.launch(LaunchRequest("b-leak-1", 2, p.instance_types()[0].name, p.instance_types()[0].zones[0])),
    "describe": lambda p: p.describe(["i-0123456789abcdef0"]),
    "list": lambda p: p.list(),
    "terminate": lambda p: p.terminate(["i-0123456789abcdef0"], request_id="t-leak-1"),
    "check": lambda p: p.check(time.monotonic() + 10),
}
EXPECTED = {"refused": TransientProviderError, "timeout": TransientProviderError, "5xx": TransientProviderError,
            "auth": ProviderAuthError}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        leaked = [s[:12] + "..." for s in SECRETS if s in text]
        assert not leaked, f"credential(s) {leaked} in: {text[:500]}"


@pytest.mark.parametrize("mode", list(EXPECTED))
@pytest.mark.parametrize("cloud", ["aws", "aliyun"])
def test_a_broken_endpoint_is_classified_and_leaks_no_credential(cloud, mode, tmp_path, moto, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    with broken(cloud, mode, tmp_path, moto) as provider:
        try:
            for name, operation in OPERATIONS.items():
                with pytest.raises(ProviderError) as caught:
                    operation(provider)
                err = caught.value
                assert type(err) is EXPECTED[mode], f"{name}: {type(err).__name__}: {err}"
                assert err.provider == cloud and not isinstance(err, ProviderConfigError)
                # the SDK's exception (a signed URL in its text) is not chained on
                assert err.__cause__ is None and err.__suppress_context__
                assert_no_secret(str(err), repr(err), "".join(traceback.format_exception(err)))
        finally:
            provider.close()
    out, errout = capfd.readouterr()
    records = [r for r in caplog.records if not r.name.startswith(("moto", "werkzeug"))]  # not the stand-ins' server side
    assert_no_secret(out, errout, *(r.getMessage() for r in records), *(str(r.exc_info) for r in records))


def test_the_aliyun_sdk_http_error_carries_the_signed_url_and_burst_drops_it(tmp_path, caplog):
    """The fault this guards against is real: the SDK's own message holds the credentials."""
    from aliyunsdkcore.acs_exception.exceptions import ClientException

    provider = provider_at("aliyun", tmp_path, closed_port())
    try:
        with pytest.raises(TransientProviderError) as caught:
            provider.list()
        assert caught.value.code == "SDK.HttpError"
        raw = provider.adaptor.client.do_action_with_exception  # the same call, straight through the SDK
        from burst_providers.aliyun.adaptor import _request

        req = _request("DescribeInstances")
        req.set_endpoint(provider.adaptor.endpoint)
        req.set_protocol_type("http")
        with pytest.raises(ClientException) as sdk:
            raw(req)
        assert ALI_KEY_ID in sdk.value.get_error_msg()  # the SDK leaks; burst's error above does not
        assert_no_secret(str(caught.value))
    finally:
        provider.close()


def test_aws_credentials_from_a_profile_file_are_scrubbed_too(tmp_path, monkeypatch, moto):
    """Credentials resolved outside the environment (a shared credentials file) are masked
    when the provider is built, so they are scrubbed like the environment's."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    key_id, secret = "AKIABURSTPROFILE0001", "burstProfileSecret/0123456789+abcdefghij"
    (tmp_path / "credentials").write_text(f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    provider = aws_provider(tmp_path, moto.endpoint_url)
    try:
        from burst.provider.errors import scrub

        assert key_id not in scrub(f"as {key_id} with {secret}") and secret not in scrub(f"{secret}")
        moto.require_auth(True)
        try:
            with pytest.raises(ProviderAuthError) as caught:
                provider.list()
        finally:
            moto.require_auth(False)
        assert key_id not in str(caught.value) and secret not in str(caught.value)
    finally:
        provider.close()


# --- configuration errors are fatal and named -------------------------------------------


def test_aliyun_wrong_region_zone_and_type_are_config_errors(tmp_path):
    with EcsEmulator(region=REGION_ALI) as emu:
        provider = aliyun_provider(tmp_path, emu.endpoint, region="cn-nowhere")
        try:
            for operation in (lambda: provider.list(), lambda: provider.check(time.monotonic() + 3)):
                with pytest.raises(ProviderConfigError, match="InvalidRegionId"):
                    operation()
        finally:
            provider.close()
        provider = aliyun_provider(tmp_path, emu.endpoint)
        try:
            for code in ("InvalidZoneId.NotFound", "InvalidInstanceType.NotFound"):
                emu.fail_next("RunInstances", code, "The specified parameter is not valid.", status=400)
                with pytest.raises(ProviderConfigError, match=code) as caught:
                    OPERATIONS["launch"](provider)
                assert not caught.value.retryable
            assert emu.count("RunInstances") == 2  # one call each: never retried
        finally:
            provider.close()


def test_aws_malformed_and_unknown_regions_and_zones_are_config_errors(tmp_path, moto, monkeypatch):
    with pytest.raises(ProviderConfigError, match="InvalidRegionError"):
        aws_provider(tmp_path, moto.endpoint_url, region="us east 1")
    # a region botocore does not know, reached through its default endpoint (redirected to
    # a closed loopback port: no traffic leaves the machine): wrong region, not EC2 down
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", f"http://127.0.0.1:{closed_port()}")
    provider = aws_provider(tmp_path, None, region="xx-nowhere-1")
    try:
        with pytest.raises(ProviderConfigError, match="xx-nowhere-1"):
            provider.check(time.monotonic() + 3)
    finally:
        provider.close()
    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2")
    provider = aws_provider(tmp_path, moto.endpoint_url, subnet_by_zone={"us-east-1a": "s-1", "us-east-1q": "s-2"},
                            instance_types=[])
    try:
        with pytest.raises(ProviderConfigError, match="us-east-1q"):
            provider.check(time.monotonic() + 3)
    finally:
        provider.close()


# --- the reachability check ---------------------------------------------------------------


@pytest.mark.parametrize("cloud", ["aws", "aliyun"])
def test_check_passes_against_a_working_endpoint_and_makes_one_call(cloud, tmp_path, moto):
    with contextlib.ExitStack() as stack:
        if cloud == "aws":
            provider = aws_provider(tmp_path, moto.endpoint_url)
        else:
            emu = stack.enter_context(EcsEmulator(region=REGION_ALI, access_keys={ALI_KEY_ID: ALI_SECRET},
                                                  security_tokens={ALI_KEY_ID: ALI_TOKEN}))
            provider = aliyun_provider(tmp_path, emu.endpoint)
        stack.callback(provider.close)
        assert provider.check(time.monotonic() + 5) is None
        assert provider.pacer.stats["describe"] == 1 and provider.list() == []
        if cloud == "aliyun":
            assert emu.count("DescribeRegions") == 1


@pytest.mark.parametrize("cloud", ["aws", "aliyun"])
def test_check_against_a_silent_endpoint_gives_up_by_itself_after_one_attempt(cloud, tmp_path):
    """A silent endpoint: the check's own timeouts end the call (the client closes the
    connection; the server never does), once, not the provider's retry deadline."""
    with SilentServer() as silent:
        slow = {"connect_timeout_seconds": 30, "read_timeout_seconds": 60,  # production-like: the deadline must cut them
                "retry": {"base_seconds": 0.5, "max_seconds": 10, "deadline_seconds": 90}}
        provider = provider_at(cloud, tmp_path, silent.port, **slow)
        try:
            started = time.monotonic()
            with pytest.raises(TransientProviderError):
                provider.check(started + 2)
            wait_until(lambda: silent.closed_by_client == 1, deadline=time.monotonic() + 10,
                       what="the client to close its connection")
            assert provider.pacer.stats["describe"] == 1 and not silent.accepted
            print(f"{cloud}: check on a silent endpoint failed after {time.monotonic() - started:.2f}s")
        finally:
            provider.close()


@pytest.mark.parametrize("cloud", ["aws", "aliyun"])
def test_check_with_no_time_left_makes_no_call(cloud, tmp_path):
    provider = provider_at(cloud, tmp_path, closed_port())
    try:
        with pytest.raises(ProviderError):
            provider.check(time.monotonic() - 1)
        assert provider.pacer.stats["describe"] == 0
    finally:
        provider.close()
