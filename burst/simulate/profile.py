"""The simulation profile: how long things take and what the clouds allow.

A TOML file, validated strictly (unknown keys are errors). Every duration is a
distribution: a fixed `seconds`, or a `median` and a `p95` (log-normal, the usual
shape of boot and provisioning times: most near the median, a long slow tail).
The default profile (`default_profile.toml` beside this file) holds published
figures; docs/simulate.md gives the source of each.
"""

from __future__ import annotations

import math
import random
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from burst.errors import ConfigError
from burst.text import read_utf8

DEFAULT = Path(__file__).with_name("default_profile.toml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Strict):
    seconds: float | None = Field(None, ge=0, allow_inf_nan=False)
    median: float | None = Field(None, gt=0, allow_inf_nan=False)
    p95: float | None = Field(None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_form(self) -> "Duration":
        if (self.seconds is None) == (self.median is None):
            raise ValueError("give either seconds, or median (and p95)")
        if self.p95 is not None and (self.median is None or self.p95 < self.median):
            raise ValueError("p95 needs a median, and cannot be below it")
        return self

    def draw(self, rng: random.Random) -> float:
        if self.seconds is not None:
            return self.seconds
        if self.p95 is None or self.p95 == self.median:
            return self.median
        sigma = math.log(self.p95 / self.median) / 1.6449  # the 95th percentile of a normal
        return rng.lognormvariate(math.log(self.median), sigma)


class Bucket(_Strict):
    """A token bucket as the clouds publish them: `capacity` at once, `per_second` refill."""

    capacity: float = Field(gt=0, allow_inf_nan=False)
    per_second: float = Field(gt=0, allow_inf_nan=False)


class CloudProfile(_Strict):
    launch_call: Duration = Duration(median=1.0, p95=2.5)
    describe_call: Duration = Duration(median=0.3, p95=0.8)
    terminate_call: Duration = Duration(median=0.5, p95=1.5)
    boot: Duration = Duration(median=35, p95=55)
    poll_seconds: float = Field(2.0, gt=0)
    max_batch: int = Field(100, ge=1, le=1000)
    #: calls per action, and instances per launch (EC2's resource bucket)
    launch_bucket: Bucket = Bucket(capacity=5, per_second=2)
    instance_bucket: Bucket = Bucket(capacity=1000, per_second=2)
    describe_bucket: Bucket = Bucket(capacity=100, per_second=20)
    terminate_bucket: Bucket = Bucket(capacity=100, per_second=20)


class StepProfile(_Strict):
    seconds: Duration
    #: share of hosts whose step fails (each failure is a host the slot replaces)
    fail_rate: float = Field(0.0, ge=0, le=1)


class ImageProfile(_Strict):
    """Where the spillover image comes from when a new host pulls it."""

    size_mb: float = Field(300, ge=0, allow_inf_nan=False)
    #: datacentre: every pull crosses the one line from the data centre to the cloud;
    #: region: a registry mirror inside the cloud region, each host pulls at its own speed
    registry: Literal["datacentre", "region"] = "region"
    line_gbit: float = Field(10, gt=0, allow_inf_nan=False)
    host_gbit: float = Field(10, gt=0, allow_inf_nan=False)


class Fault(_Strict):
    #: no_stock: launches on the tier fail for want of capacity from `at_seconds` on;
    #: stall: instances launched from `at_seconds` on never finish booting
    kind: Literal["no_stock", "stall"]
    tier: str
    at_seconds: float = Field(0, ge=0, allow_inf_nan=False)


class Profile(_Strict):
    seed: int = 1
    cloud: CloudProfile = CloudProfile()
    #: per tier, in place of `cloud` (a whole CloudProfile: give every key you change)
    tiers: dict[str, CloudProfile] = Field(default_factory=dict)
    initialise: StepProfile = StepProfile(seconds=Duration(median=45, p95=75))
    join: StepProfile = StepProfile(seconds=Duration(median=2, p95=5))
    drain: Duration = Duration(seconds=5)
    leave: Duration = Duration(seconds=2)
    image: ImageProfile = ImageProfile()
    faults: list[Fault] = Field(default_factory=list)

    def for_tier(self, tier: str) -> CloudProfile:
        return self.tiers.get(tier, self.cloud)


def load_profile(path: str | Path | None = None) -> Profile:
    path = Path(path) if path else DEFAULT
    text = read_utf8(path, ConfigError, "profile", "a profile is UTF-8 TOML")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top)"
        raise ConfigError(f"{path}: {where}: {err['msg']}") from None
