"""The one place where boto3 / botocore errors become burst.provider.errors.

Capacity errors fail fast (the core moves to the next zone, then type, then tier);
only throttling and transient errors are retryable, and the retrying is done by
burst.provider.pacing, never by botocore (its retries are turned off in the adaptor).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from burst.provider.errors import (
    InstanceNotFoundError,
    InsufficientCapacityError,
    ProviderAuthError,
    ProviderConfigError,
    ProviderError,
    QuotaExceededError,
    ThrottledError,
    TransientProviderError,
)

PROVIDER = "aws"

# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
CAPACITY = {
    "InsufficientInstanceCapacity",
    "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientFreeAddressesInSubnet",  # this zone's subnet is full: the next zone helps
    "Unsupported",  # the instance type is not offered in this zone
}
QUOTA = {"InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded", "ResourceLimitExceeded"}
THROTTLED = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled"}
TRANSIENT = {"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"}
AUTH = {
    "AuthFailure",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "RequestExpired",
    "OptInRequired",
    "Blocked",
}
NOT_FOUND = {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"}
CONFIG_PREFIXES = (
    "InvalidAMIID.",
    "InvalidSubnetID.",
    "InvalidGroup.",
    "InvalidKeyPair.",
    "InvalidLaunchTemplate",
    "InvalidParameter",
    "MissingParameter",
    "InvalidInstanceType",
    "InvalidSecurityGroupID",
)


def capacity_error(message: str, **fields) -> InsufficientCapacityError:
    return InsufficientCapacityError.no_stock(PROVIDER, message, **fields)


def map_client_error(exc: Exception, *, operation: str, zone: str = "", instance_type: str = "") -> ProviderError:
    """The burst error for one botocore exception (never None)."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code", "") or "Unknown"
        message = (err.get("Message") or "").splitlines()[0] if err.get("Message") else code
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        text = f"aws {operation}: {code}: {message}"
        if code in CAPACITY:
            return capacity_error(message, code=code, zone=zone, instance_type=instance_type)
        if code in QUOTA:
            return QuotaExceededError(text, code=code, provider=PROVIDER)
        if code in THROTTLED or status == 429:
            return ThrottledError(text, code=code, provider=PROVIDER)
        if code in NOT_FOUND:
            return InstanceNotFoundError(text, code=code, provider=PROVIDER)
        if code in AUTH:
            return ProviderAuthError(text, code=code, provider=PROVIDER)
        if code.startswith(CONFIG_PREFIXES):
            return ProviderConfigError(text, code=code, provider=PROVIDER)
        if code in TRANSIENT or status >= 500:
            return TransientProviderError(text, code=code, provider=PROVIDER)
        # IdempotentParameterMismatch and anything unknown: fatal, not retried
        return ProviderError(text, code=code, provider=PROVIDER)
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError)):
        return ProviderAuthError(f"aws {operation}: no usable credentials ({type(exc).__name__})", provider=PROVIDER)
    if isinstance(exc, (bx.ConnectionError, bx.HTTPClientError)):
        # EndpointConnectionError, timeouts, closed connections: the request may or may
        # not have reached EC2, so only idempotent calls are retried (launch has its token)
        return TransientProviderError(f"aws {operation}: {type(exc).__name__}: {exc}", code=type(exc).__name__, provider=PROVIDER)
    if isinstance(exc, bx.ParamValidationError):
        return ProviderConfigError(f"aws {operation}: {exc}".replace("\n", " "), provider=PROVIDER)
    return ProviderError(f"aws {operation}: {type(exc).__name__}: {exc}", provider=PROVIDER)


@contextlib.contextmanager
def map_errors(operation: str, *, zone: str = "", instance_type: str = "") -> Iterator[None]:
    """Turn any botocore error raised inside into its burst error."""
    from botocore import exceptions as bx

    try:
        yield
    except (bx.BotoCoreError, bx.ClientError) as exc:
        raise map_client_error(exc, operation=operation, zone=zone, instance_type=instance_type) from exc
