"""The one place where boto3 / botocore errors become burst.provider.errors.

Capacity errors fail fast (the core moves to the next zone, then type, then tier);
only throttling and transient errors are retryable, and the retrying is done by
burst.provider.pacing, never by botocore (its retries are turned off in the adaptor).
Every message is scrubbed of credentials (ProviderError does it) and the botocore
exception is not chained on (burst.provider.errors.map_errors).
"""

from __future__ import annotations

import contextlib

from burst.provider.errors import (
    ErrorCodes,
    ProviderAuthError,
    ProviderConfigError,
    ProviderError,
    TransientProviderError,
    map_errors,
)
from burst.provider.lazy import LazyImport

PROVIDER = "aws"
bx = LazyImport("botocore.exceptions", provider=PROVIDER, package="boto3")

# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
CODES = ErrorCodes(
    provider=PROVIDER,
    capacity={
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientFreeAddressesInSubnet",  # this zone's subnet is full: the next zone helps
        "Unsupported",  # the instance type is not offered in this zone
    },
    quota={"InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded", "ResourceLimitExceeded"},
    throttled={"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled"},
    not_found={"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"},
    auth={
        "AuthFailure*",  # AuthFailure, AuthFailure.ServiceLinkedRoleCreationNotPermitted...
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "RequestExpired",
        "OptInRequired",  # the account has not enabled this region
        "PendingVerification",
        "Blocked",
    },
    config={
        "InvalidAMIID",
        "InvalidSubnetID",
        "InvalidGroup",
        "InvalidKeyPair",
        "InvalidLaunchTemplate*",
        "InvalidParameter*",  # an unknown zone or instance type is InvalidParameterValue
        "MissingParameter*",
        "InvalidInstanceType*",
        "InvalidAvailabilityZone*",
        "InvalidSecurityGroupID*",
        "InvalidRegion*",
    },
    transient={"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"},
)

_AUTH_CLASSES = ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                 "NoAuthTokenError", "TokenRetrievalError", "SSOTokenLoadError", "UnauthorizedSSOTokenError")
_CONFIG_CLASSES = ("NoRegionError", "InvalidRegionError", "ParamValidationError", "UnknownEndpointError",
                   "InvalidEndpointConfigurationError", "UnknownServiceError")


def _any_of(names: tuple[str, ...]) -> tuple[type[BaseException], ...]:
    return tuple(getattr(bx, n) for n in names if hasattr(bx, n))  # older botocores lack some


def map_client_error(exc: BaseException, *, operation: str, zone: str = "", instance_type: str = "",
                     unknown_region: str = "") -> ProviderError:
    """The burst error for one botocore exception (never None). `unknown_region`: the
    configured region when botocore does not know it (a connection error then means
    the region is wrong, not that EC2 is down)."""
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code", "") or "Unknown"
        message = (err.get("Message") or "").splitlines()[0] if err.get("Message") else code
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return CODES.error(operation, code, message, status=status, zone=zone, instance_type=instance_type)
    kind = type(exc).__name__
    one_line = str(exc).replace("\n", " ")
    if isinstance(exc, _any_of(_AUTH_CLASSES)):
        return ProviderAuthError(f"aws {operation}: no usable credentials ({kind}: {one_line})", code=kind,
                                 provider=PROVIDER)
    if isinstance(exc, _any_of(_CONFIG_CLASSES)):
        return ProviderConfigError(f"aws {operation}: {kind}: {one_line}", code=kind, provider=PROVIDER)
    if isinstance(exc, bx.EndpointConnectionError) and unknown_region:
        return ProviderConfigError(f"aws {operation}: region {unknown_region!r} is not one botocore knows and its "
                                   f"endpoint cannot be reached ({one_line}): check `region`", code=kind,
                                   provider=PROVIDER)  # fmt: skip
    if isinstance(exc, (bx.ConnectionError, bx.HTTPClientError)):
        # EndpointConnectionError, timeouts, closed connections:
        # the request may or may not have reached EC2, so only idempotent calls are
        # retried (launch carries its ClientToken)
        return TransientProviderError(f"aws {operation}: {kind}: {one_line}", code=kind, provider=PROVIDER)
    return ProviderError(f"aws {operation}: {kind}: {one_line}", code=kind, provider=PROVIDER)


def aws_errors(operation: str, *, zone: str = "", instance_type: str = "",
               unknown_region: str = "") -> contextlib.AbstractContextManager[None]:
    """Turn any botocore error raised inside into its burst error."""
    return map_errors(lambda: (bx.BotoCoreError, bx.ClientError),
                      lambda exc: map_client_error(exc, operation=operation, zone=zone, instance_type=instance_type,
                                                   unknown_region=unknown_region))


__all__ = ["CODES", "aws_errors", "map_client_error"]
