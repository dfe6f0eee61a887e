"""Provider errors: every SDK error is mapped to one of these at the provider boundary.

A provider never returns None for a failure; it raises one of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from burst.errors import BurstError

if TYPE_CHECKING:
    from burst.provider import Instance


class ProviderError(BurstError):
    """Base of all provider errors. `code` is the cloud's own error code, if any."""

    retryable = False

    def __init__(self, message: str, *, code: str = "", provider: str = ""):
        super().__init__(message)
        self.code = code
        self.provider = provider


class InsufficientCapacityError(ProviderError):
    """The zone or instance type has no stock. Fails fast: the caller tries the next
    zone, type or tier. `created` holds what a partial batch did get; `zone` and
    `instance_type` name the offering that ran out ("" when the provider cannot tell)."""

    @classmethod
    def no_stock(cls, provider: str, message: str, *, code: str, zone: str, instance_type: str,
                 created: Sequence["Instance"] = ()) -> "InsufficientCapacityError":
        """The error every provider raises for a zone or type out of stock."""
        return cls(f"{provider}: no capacity for {instance_type} in {zone}: {message}", code=code, provider=provider,
                   created=created, zone=zone, instance_type=instance_type)

    def __init__(self, message: str, *, created: Sequence["Instance"] = (), zone: str = "",
                 instance_type: str = "", **kw):
        super().__init__(message, **kw)
        self.created = list(created)
        self.zone = zone
        self.instance_type = instance_type


class QuotaExceededError(ProviderError):
    """The account quota is used up: no other zone helps, the next tier might."""


class ThrottledError(ProviderError):
    """The API rate limit was hit. Retried with backoff by the caller."""

    retryable = True


class TransientProviderError(ProviderError):
    """A 5xx or connection error: safe to retry with the same request id."""

    retryable = True


class InstanceNotFoundError(ProviderError):
    """The instance does not exist (or no longer does)."""


class NotOwnedError(ProviderError):
    """The instance is not tagged as this cluster's: burst refuses to touch it."""


class ProviderAuthError(ProviderError):
    """Credentials are missing or refused. Fatal."""


class ProviderConfigError(ProviderError):
    """The provider's configuration is wrong (image, subnet, region...). Fatal."""
