"""The one place where aliyun-python-sdk-core errors become burst.provider.errors.

Codes from the ECS API reference (RunInstances / DescribeInstances / DeleteInstances
error tables and the error center). Capacity errors fail fast; only throttling and
transient errors are retryable, and burst.provider.pacing does the retrying (the
SDK's own auto-retry is turned off in the adaptor).

The SDK's `SDK.HttpError` message carries the whole signed request URL (AccessKeyId,
SecurityToken, Signature in its query string): ProviderError scrubs every message, and
the SDK exception is not chained on (burst.provider.errors.map_errors).
"""

from __future__ import annotations

import contextlib

from burst.provider.errors import ErrorCodes, ProviderError, map_errors
from burst.provider.lazy import LazyImport

PROVIDER = "aliyun"
sdk_exceptions = LazyImport("aliyunsdkcore.acs_exception.exceptions", provider=PROVIDER,
                            package="aliyun-python-sdk-core")

CODES = ErrorCodes(
    provider=PROVIDER,
    capacity={
        "OperationDenied.NoStock",
        "Zone.NotOnSale",
        "Zone.NotOpen",
        "InvalidResourceType.NotSupported",
        "InvalidInstanceType.ZoneNotSupported",
        "ResourceNotAvailable",
        "OperationDenied.ZoneNotAllowed",
    },
    quota={"QuotaExceed*", "SecurityGroupInstanceLimitExceed*", "Account.Arrearage*", "InvalidAccountStatus*"},
    throttled={"Throttling*"},
    not_found={"InvalidInstanceId.NotFound", "InvalidInstanceId.MalFormed", "InstanceNotFound"},
    auth={
        "InvalidAccessKeyId*",  # InvalidAccessKeyId.NotFound, .Inactive
        "InvalidAccessKeySecret*",  # the SDK's own name for a SignatureDoesNotMatch it can explain
        "MissingAccessKeyId",
        "SignatureDoesNotMatch*",
        "IncompleteSignature*",
        "InvalidSecurityToken*",  # .Expired, .Mismatch, .Malformed
        "Forbidden*",  # Forbidden.RAM, Forbidden.NotAuthorized
        "NoPermission*",
        "SDK.InvalidCredential*",
    },
    config={
        "InvalidImageId*",
        "InvalidVSwitchId*",
        "InvalidSecurityGroupId*",
        "InvalidParameter*",
        "MissingParameter*",
        "InvalidRegionId*",
        "InvalidZoneId*",
        "ZoneId.NotFound",
        "InvalidKeyPairName*",
        "InvalidInstanceType*",
        "InvalidSystemDisk*",
        "ImageNotSupportInstanceType*",
        "SDK.InvalidParameter*",
        "SDK.InvalidRegionId*",
        "SDK.EndpointResolvingError*",
    },
    transient={"ServiceUnavailable", "InternalError", "UnknownError", "InnerServiceFailed", "SDK.HttpError",
               "SDK.ServerUnreachable"},
)


def map_sdk_error(exc: BaseException, *, action: str, zone: str = "", instance_type: str = "") -> ProviderError:
    """The burst error for one SDK exception (never None)."""
    if isinstance(exc, sdk_exceptions.ServerException):
        code, status = exc.get_error_code() or "Unknown", exc.get_http_status() or 0
    else:
        code, status = exc.get_error_code() or "SDK.Unknown", 0
    message = (exc.get_error_msg() or code).splitlines()[0]
    # IncorrectInstanceStatus, IdempotentParameterMismatch, anything unknown: fatal
    return CODES.error(action, code, message, status=status, zone=zone, instance_type=instance_type)


def aliyun_errors(action: str, *, zone: str = "", instance_type: str = "") -> contextlib.AbstractContextManager[None]:
    """Turn any SDK error raised inside into its burst error."""
    return map_errors(lambda: (sdk_exceptions.ServerException, sdk_exceptions.ClientException),
                      lambda exc: map_sdk_error(exc, action=action, zone=zone, instance_type=instance_type))
