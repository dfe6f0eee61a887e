"""Faults an operator meets on event day, through the real CLI, boto3 against moto and
the aliyun SDK against the ECS emulator: refused credentials on the first tier, and
a cloud endpoint that stopped answering before `burst down`."""

from __future__ import annotations

import socket

import pytest

from cloud_stands import (  # noqa: F401  (fixtures)
    ALIYUN_KEYS,
    CLUSTER,
    AliyunStand,
    AwsStand,
    cloud,
    ecs_emulator,
    moto_server,
    toml_value,
)

SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

TIER = """
[[tiers]]
name = "{name}"
provider = "{provider}"
ready_seconds = 30
[tiers.options]
{options}
[[tiers.instance_types]]
name = "{itype}"
cpu = 4
memory_gib = 8
price_per_hour = {price}
zones = {zones}
"""

HEAD = """
[cluster]
name = "{cluster}"
store = "{store}"
phase_timeout_seconds = 60

[[services]]
name = "web"
cpu = 1
memory_gib = 2

[initialise]
kind = "recording"
[swarm]
kind = "recording"
"""


def _tier(name: str, stand, price: float, options: dict | None = None) -> str:
    opts = options or stand.options()
    return TIER.format(name=name, provider=stand.provider, itype=stand.itype, price=price,
                       zones=toml_value(stand.zones),
                       options="\n".join(f"{k} = {toml_value(v)}" for k, v in opts.items()))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


def _one_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


@SQLITE_ONLY
def test_a_wrong_secret_on_the_first_tier_is_one_line_and_nothing_is_launched_anywhere(
        make_burst, store_url, moto_server, ecs_emulator, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws, aliyun = AwsStand(moto_server), AliyunStand(ecs_emulator)
    (key_id, _), = ALIYUN_KEYS.items()
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret")
    burst = make_burst()
    burst.config.write_text(HEAD.format(cluster=CLUSTER, store=store_url)
                            + _tier("aliyun", aliyun, 0.2) + _tier("aws", aws, 0.3))
    proc = burst.run("up", "gala", "--replicas", "web=8", check=False)
    line = _one_line(proc)
    assert "tier aliyun" in line and "ProviderAuthError" in line and "nothing was launched" in line, line
    assert "not-the-secret" not in proc.stderr + proc.stdout
    assert aliyun.created() == [] and aws.created() == []
    assert burst.json("status")["bursts"] == []  # nothing stored either


@SQLITE_ONLY
def test_down_with_the_endpoint_closed_is_one_line_and_a_later_down_finishes(
        make_burst, store_url, moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws = AwsStand(moto_server)
    burst = make_burst()
    head = HEAD.format(cluster=CLUSTER, store=store_url)
    burst.config.write_text(head + _tier("aws", aws, 0.3))
    burst.run("up", "gala", "--replicas", "web=8")
    made = aws.created()
    assert len(made) == 2 and all(aws.alive(i) for i in made)

    closed = {**aws.options(), "endpoint_url": f"http://127.0.0.1:{_closed_port()}"}
    burst.config.write_text(head + _tier("aws", aws, 0.3, closed))
    line = _one_line(burst.run("down", "gala", check=False))
    assert "tier aws" in line and "nothing was changed" in line, line
    assert all(aws.alive(i) for i in made)
    assert [b["status"] for b in burst.json("status")["bursts"]] == ["active"]

    burst.config.write_text(head + _tier("aws", aws, 0.3))  # the endpoint answers again
    done = burst.json("down", "gala")
    assert done["status"] == "down" and not any(aws.alive(i) for i in made)
