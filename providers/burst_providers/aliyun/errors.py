"""The one place where aliyun-python-sdk-core errors become burst.provider.errors.

Codes from the ECS API reference (RunInstances / DescribeInstances / DeleteInstances
error tables and the error center). Capacity errors fail fast; only throttling and
transient errors are retryable, and burst.provider.pacing does the retrying (the
SDK's own auto-retry is turned off in the adaptor).
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

PROVIDER = "aliyun"

CAPACITY = {
    "OperationDenied.NoStock",
    "Zone.NotOnSale",
    "Zone.NotOpen",
    "InvalidResourceType.NotSupported",
    "InvalidInstanceType.ZoneNotSupported",
    "ResourceNotAvailable",
    "OperationDenied.ZoneNotAllowed",
}
QUOTA_PREFIXES = ("QuotaExceed", "SecurityGroupInstanceLimitExceed", "Account.Arrearage", "InvalidAccountStatus")
THROTTLED_PREFIXES = ("Throttling",)
TRANSIENT = {"ServiceUnavailable", "InternalError", "UnknownError", "InnerServiceFailed", "SDK.HttpError", "SDK.ServerUnreachable"}
AUTH_PREFIXES = (
    "InvalidAccessKeyId",
    "InvalidAccessKeySecret",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "Forbidden",
    "NoPermission",
    "SDK.InvalidCredential",
)
NOT_FOUND = {"InvalidInstanceId.NotFound", "InvalidInstanceId.MalFormed", "InstanceNotFound"}
CONFIG_PREFIXES = (
    "InvalidImageId",
    "InvalidVSwitchId",
    "InvalidSecurityGroupId",
    "InvalidParameter",
    "MissingParameter",
    "InvalidRegionId",
    "InvalidZoneId",
    "ZoneId.NotFound",
    "InvalidKeyPairName",
    "InvalidInstanceType",
    "InvalidSystemDisk",
    "ImageNotSupportInstanceType",
    "SDK.InvalidParameter",
    "SDK.InvalidRegionId",
    "SDK.EndpointResolvingError",
)


def capacity_error(message: str, **fields) -> InsufficientCapacityError:
    return InsufficientCapacityError.no_stock(PROVIDER, message, **fields)


def map_sdk_error(exc: Exception, *, action: str, zone: str = "", instance_type: str = "") -> ProviderError:
    """The burst error for one SDK exception (never None)."""
    from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException

    if isinstance(exc, ServerException):
        code, status = exc.get_error_code() or "Unknown", exc.get_http_status() or 0
        message = (exc.get_error_msg() or code).splitlines()[0]
    elif isinstance(exc, ClientException):
        code, status = exc.get_error_code() or "SDK.Unknown", 0
        message = (exc.get_error_msg() or code).splitlines()[0]
    else:
        return ProviderError(f"aliyun {action}: {type(exc).__name__}: {exc}", provider=PROVIDER)
    text = f"aliyun {action}: {code}: {message}"
    if code in CAPACITY:
        return capacity_error(message, code=code, zone=zone, instance_type=instance_type)
    if code.startswith(QUOTA_PREFIXES):
        return QuotaExceededError(text, code=code, provider=PROVIDER)
    if code.startswith(THROTTLED_PREFIXES):
        return ThrottledError(text, code=code, provider=PROVIDER)
    if code in NOT_FOUND:
        return InstanceNotFoundError(text, code=code, provider=PROVIDER)
    if code.startswith(AUTH_PREFIXES):
        return ProviderAuthError(text, code=code, provider=PROVIDER)
    if code.startswith(CONFIG_PREFIXES):
        return ProviderConfigError(text, code=code, provider=PROVIDER)
    if code in TRANSIENT or status >= 500:
        return TransientProviderError(text, code=code, provider=PROVIDER)
    # IncorrectInstanceStatus, IdempotentParameterMismatch, anything unknown: fatal
    return ProviderError(text, code=code, provider=PROVIDER)


@contextlib.contextmanager
def map_errors(action: str, *, zone: str = "", instance_type: str = "") -> Iterator[None]:
    """Turn any SDK error raised inside into its burst error."""
    from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException

    try:
        yield
    except (ServerException, ClientException) as exc:
        raise map_sdk_error(exc, action=action, zone=zone, instance_type=instance_type) from exc
