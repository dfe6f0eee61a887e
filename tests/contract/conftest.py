"""The stands the contract suite runs on: one real provider each, on its stand-in.

A stand is a built provider plus the few knobs the suite needs that the provider
itself must not have (make a stock-out, make an instance burst does not own, look at
an instance without going through the provider). Adding a provider to the suite is one
generator function below and one line in STANDS.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from burst.provider import Provider, ProviderContext

CLUSTER = "contract"
INSTANCE_TYPE_FIELDS = {"cpu": 2, "memory_gib": 8, "price_per_hour": 0.1}


@dataclass
class Stand:
    provider: Provider
    zones: list[str]  # at least two
    instance_type: str
    unknown_id: str  # well-formed for this cloud, never created
    stock_out: Callable[[str], None]  # no capacity left in this zone
    short_stock: Callable[[str, int], None]  # only n more instances in this zone
    make_foreign: Callable[[str | None], str]  # an instance made outside burst, tagged with this cluster or untagged
    exists: Callable[[str], bool]  # seen directly on the stand-in: present and not terminated
    #: cloud stands: a context giving this provider built with a credential the stand-in
    #: refuses; None where there is no credential (fake, lab, onprem)
    wrong_credentials: Callable[[], contextlib.AbstractContextManager[Provider]] | None = None


# --- fake -----------------------------------------------------------------------------


@contextlib.contextmanager
def fake_stand(tmp_path: Path) -> Iterator[Stand]:
    from burst_providers.fake import FakeProvider

    zones = ["zone-a", "zone-b"]
    provider = FakeProvider(
        ProviderContext(CLUSTER, tmp_path),
        {"boot_seconds": 0.2, "launch_seconds": 0,
         "instance_types": [{"name": "fake.large", "zones": zones, **INSTANCE_TYPE_FIELDS}]},
    )

    def exists(iid: str) -> bool:
        rec = provider.records()["instances"].get(iid)
        return rec is not None and rec["state"] != "terminated"

    yield Stand(
        provider=provider,
        zones=zones,
        instance_type="fake.large",
        unknown_id="fake-999999",
        stock_out=lambda zone: provider.set_faults(no_stock_zones=[zone]),
        short_stock=lambda zone, n: provider.set_faults(max_per_launch=n),
        make_foreign=lambda cluster: provider.create_foreign(zone=zones[0], cluster=cluster or ""),
        exists=exists,
    )


# --- aws on moto ----------------------------------------------------------------------

AWS_REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator:
    from stands.moto_ec2 import MotoEc2Server

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED")}
    # fake credentials for the standard chain: moto accepts any
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true")
    server = MotoEc2Server().start()
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: fast retries for tests; the buckets stay at the clouds' published sizes
FAST_RETRY = {"base_seconds": 0.05, "max_seconds": 0.5, "deadline_seconds": 20}


@contextlib.contextmanager
def aws_stand(tmp_path: Path, moto_server) -> Iterator[Stand]:
    import boto3

    from burst_providers.aws import AwsProvider

    moto_server.reset()
    zones = [f"{AWS_REGION}a", f"{AWS_REGION}b"]
    ec2 = boto3.client("ec2", region_name=AWS_REGION, endpoint_url=moto_server.endpoint_url)
    ami, subnets = moto_server.network(AWS_REGION, zones)
    types = [{"name": "m5.large", "zones": zones, **INSTANCE_TYPE_FIELDS}]
    options = moto_server.provider_options(AWS_REGION, ami, subnets, types, retry=FAST_RETRY)
    provider = AwsProvider(ProviderContext(CLUSTER, tmp_path), options)

    def make_foreign(cluster: str | None) -> str:
        params = {"ImageId": ami, "MinCount": 1, "MaxCount": 1, "InstanceType": "m5.large", "SubnetId": subnets[zones[0]]}
        if cluster:
            params["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [{"Key": "burst:cluster", "Value": cluster}]}]
        return ec2.run_instances(**params)["Instances"][0]["InstanceId"]

    def exists(iid: str) -> bool:
        found = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [iid]}])["Reservations"]
        return any(i["State"]["Name"] != "terminated" for r in found for i in r["Instances"])

    @contextlib.contextmanager
    def wrong_credentials() -> Iterator[Provider]:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AWS_ACCESS_KEY_ID", "AKIACONTRACTWRONG001")  # never issued by moto
            env.setenv("AWS_SECRET_ACCESS_KEY", "contract-wrong-secret")
            wrong = AwsProvider(ProviderContext(CLUSTER, tmp_path), options)
            moto_server.require_auth(True)
            try:
                yield wrong
            finally:
                moto_server.require_auth(False)
                wrong.close()

    try:
        yield Stand(
            provider=provider,
            zones=zones,
            instance_type="m5.large",
            unknown_id="i-0123456789abcdef0",
            stock_out=lambda zone: moto_server.set_capacity(0, zone=zone),
            short_stock=lambda zone, n: moto_server.set_capacity(n, zone=zone),
            make_foreign=make_foreign,
            exists=exists,
            wrong_credentials=wrong_credentials,
        )
    finally:
        provider.close()


# --- aliyun on the ECS emulator ---------------------------------------------------------

ALIYUN_REGION = "cn-hangzhou"
ALIYUN_KEYS = {"contract-key-id": "contract-key-secret"}


@pytest.fixture
def aliyun_credentials(monkeypatch) -> dict[str, str]:
    (key_id, secret), = ALIYUN_KEYS.items()
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    return ALIYUN_KEYS


@contextlib.contextmanager
def aliyun_stand(tmp_path: Path, keys: dict[str, str]) -> Iterator[Stand]:
    from stands.ecs_emulator import EcsEmulator
    from burst_providers.aliyun import AliyunProvider

    zones = [f"{ALIYUN_REGION}-h", f"{ALIYUN_REGION}-i"]
    with EcsEmulator(region=ALIYUN_REGION, pending_seconds=0.1, starting_seconds=0.2, access_keys=keys) as emulator:
        types = [{"name": "ecs.g7.large", "zones": zones, **INSTANCE_TYPE_FIELDS}]
        options = emulator.provider_options(zones, types, retry=FAST_RETRY)
        provider = AliyunProvider(ProviderContext(CLUSTER, tmp_path), options)

        @contextlib.contextmanager
        def wrong_credentials() -> Iterator[Provider]:
            with pytest.MonkeyPatch.context() as env:
                env.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "contract-wrong-secret")  # the signature fails
                wrong = AliyunProvider(ProviderContext(CLUSTER, tmp_path), options)
                try:
                    yield wrong
                finally:
                    wrong.close()

        try:
            yield Stand(
                provider=provider,
                zones=zones,
                instance_type="ecs.g7.large",
                unknown_id="i-bp1000000000000000",
                stock_out=lambda zone: emulator.set_stock(0, zone=zone),
                short_stock=lambda zone, n: emulator.set_stock(n, zone=zone),
                make_foreign=lambda cluster: emulator.create_instance(
                    zone=zones[0], tags={"burst:cluster": cluster} if cluster else {}
                ),
                exists=lambda iid: emulator.status(iid) not in (None, "Stopping"),
                wrong_credentials=wrong_credentials,
            )
        finally:
            provider.close()


# --- onprem: the shared pool's ledger in a SQLite store ---------------------------------


@contextlib.contextmanager
def onprem_stand(tmp_path: Path) -> Iterator[Stand]:
    """A pool of 8 lent hosts per zone (2 cpu, 8 GiB) and 2 hosts its unit keeps."""
    from burst.pool import ledger
    from burst.provider import LaunchRequest
    from burst_providers.onprem import OnPremProvider

    zones = ["dc-a", "dc-b"]
    inventory = tmp_path / "unit.ini"
    inventory.write_text("".join(f"h-{z}-[01:08] burst_zone={z} cpu=2 memory_gib=8\n" for z in zones)
                         + "kept-[1:2] cpu=2 memory_gib=8\n")
    context = ProviderContext(CLUSTER, tmp_path, store_url=f"sqlite:///{tmp_path}/pool.db")
    options = {"instance_types": [{"name": "pool.small", "zones": zones, **INSTANCE_TYPE_FIELDS}]}
    provider = OnPremProvider(context, options)
    other = OnPremProvider(ProviderContext("another-cluster", tmp_path, store_url=context.store_url), options)
    ledger.import_inventory(provider.store, "contract-unit", inventory)
    ledger.lend(provider.store, "contract-unit", hosts=[f"h-{z}-{n:02d}" for z in zones for n in range(1, 9)])

    def keep_free(zone: str, n: int) -> None:  # the unit takes back all but n free hosts of the zone
        free = [h.name for h in ledger.host_views(provider.store) if h.zone == zone and h.status == "lent"]
        if free[n:]:
            ledger.recall(provider.store, "contract-unit", free[n:], freeze_check=lambda *_: None)

    def make_foreign(cluster: str | None) -> str:
        if cluster is None:
            return "kept-1"  # never lent: no burst holds it
        return other.launch(LaunchRequest(f"foreign-{cluster}", 1, "pool.small", zones[0]))[0].id

    try:
        yield Stand(
            provider=provider,
            zones=zones,
            instance_type="pool.small",
            unknown_id="no-such-host",
            stock_out=lambda zone: keep_free(zone, 0),
            short_stock=keep_free,
            make_foreign=make_foreign,
            # a pool host "exists" as an instance unless it sits free in the pool
            exists=lambda name: any(h.name == name and h.status != "lent" for h in ledger.host_views(provider.store)),
        )
    finally:
        other.close()
        provider.close()


# --- the parametrized fixture -------------------------------------------------------------

#: name -> builds the stand, given pytest's `request` and tmp_path
@pytest.fixture(scope="session")
def lab_for_contract(tmp_path_factory):
    from stands.lab import running_lab, skip_unless_lab_can_run

    skip_unless_lab_can_run()
    with running_lab(tmp_path_factory.mktemp("contract-lab"), workers=0) as lab:
        yield lab


@contextlib.contextmanager
def lab_stand(tmp_path: Path, lab) -> Iterator[Stand]:
    from stands.lab import lab_provider, make_foreign_host, reset_launched, set_zone_room

    zones = ["lab-a", "lab-b"]
    provider = lab_provider(lab, tmp_path, cluster=CLUSTER,
                            instance_types=[{"name": "lab.host", "zones": zones, **INSTANCE_TYPE_FIELDS}])
    try:
        yield Stand(provider=provider, zones=zones, instance_type="lab.host", unknown_id="vm-999999",
                    stock_out=lambda zone: set_zone_room(lab, zone, 0),
                    short_stock=lambda zone, n: set_zone_room(lab, zone, n),
                    make_foreign=lambda cluster: make_foreign_host(lab, cluster),
                    exists=lambda iid: lab.host_record(iid) is not None)
    finally:
        reset_launched(lab)


STANDS: dict[str, Callable] = {
    "fake": lambda request, tmp_path: fake_stand(tmp_path),
    "aws": lambda request, tmp_path: aws_stand(tmp_path, request.getfixturevalue("moto_server")),
    "aliyun": lambda request, tmp_path: aliyun_stand(tmp_path, request.getfixturevalue("aliyun_credentials")),
    "lab": lambda request, tmp_path: lab_stand(tmp_path, request.getfixturevalue("lab_for_contract")),
    "onprem": lambda request, tmp_path: onprem_stand(tmp_path),
}


#: the providers that take credentials (the clouds): the clauses about credentials run on these
CREDENTIALED = ("aliyun", "aws")


@pytest.fixture(params=sorted(STANDS))
def stand(request, tmp_path) -> Iterator[Stand]:
    with STANDS[request.param](request, tmp_path) as built:
        yield built


@pytest.fixture(params=CREDENTIALED)
def credentialed_stand(request, tmp_path) -> Iterator[Stand]:
    with STANDS[request.param](request, tmp_path) as built:
        yield built
