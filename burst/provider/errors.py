"""Provider errors: every SDK error is mapped to one of these at the provider boundary.

A provider never returns None for a failure; it raises one of these.

- `ProviderError` and its kinds: what the core acts on (fail fast, retry, next zone...).
- `scrub`: the one function that takes credentials out of a text (signed URLs, query
  strings with Signature / AccessKeyId / SecurityToken, access key ids, secrets, STS
  tokens). Every `ProviderError` scrubs its own message, so no provider error can carry
  a credential to the journal, a log line or the operator's screen.
- `ErrorCodes` and `map_errors`: the boundary each cloud provider declares once (its
  error codes by meaning) and wraps every SDK call in.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from burst.errors import BurstError

if TYPE_CHECKING:
    from burst.provider import Instance


class ProviderError(BurstError):
    """Base of all provider errors. `code` is the cloud's own error code, if any."""

    retryable = False

    def __init__(self, message: str, *, code: str = "", provider: str = ""):
        super().__init__(scrub(message))
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


# --- secrets never in error text -----------------------------------------------------

#: environment variables whose values are credentials of a cloud SDK
CREDENTIAL_ENV_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET", "ALIYUN_SECURITY_TOKEN",
)  # fmt: skip
REDACTED = "<redacted>"
#: a value this short is not a credential, and replacing it would garble messages
_MIN_SECRET = 6
_masked: set[str] = set()
_masked_lock = threading.Lock()

_SENSITIVE_NAMES = (
    r"Signature|SignatureNonce|AccessKeyId|AccessKeySecret|SecurityToken|Credential|AWSAccessKeyId"
    r"|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|aws_access_key_id|aws_secret_access_key"
    r"|aws_session_token|access_key_secret|secret_access_key|session_token"
)
_PATTERNS = (
    # a query string that carries parameters (signed V1 URLs put every parameter there)
    (re.compile(r"\?[^\s'\"<>()]*=[^\s'\"<>()]*"), "?" + REDACTED),
    # name=value of a credential parameter, also percent-encoded (a string to sign) and in headers
    (re.compile(rf"(?i)(?<![a-z])({_SENSITIVE_NAMES})(['\"]?\s*[=:]\s*['\"]?|%3D|%253D)((?:(?!%26|%2526)[^\s&,;'\"<>])+)"),
     rf"\1\2{REDACTED}"),
    # an Authorization header's value
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n]+"), rf"\1{REDACTED}"),
    # AWS access key ids (long-term AKIA, temporary ASIA) and Aliyun ones (LTAI)
    (re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b"), REDACTED),
    (re.compile(r"\bLTAI[A-Za-z0-9]{12,30}\b"), REDACTED),
    # STS session tokens: hundreds of base64 characters in one run
    (re.compile(r"[A-Za-z0-9+/=%]{100,}"), REDACTED),
)


def mask(*values: str | None) -> None:
    """Register credential values this process uses (e.g. resolved from a profile file,
    not the environment): `scrub` removes them from every text from now on."""
    with _masked_lock:
        _masked.update(v for v in values if v and len(v) >= _MIN_SECRET)


def _known_secrets(extra: Iterable[str]) -> list[str]:
    with _masked_lock:
        known = set(_masked)
    known.update(os.environ[v] for v in CREDENTIAL_ENV_VARS if len(os.environ.get(v, "")) >= _MIN_SECRET)
    known.update(v for v in extra if v and len(v) >= _MIN_SECRET)
    forms = set()
    for value in known:  # as is, and as a URL or a string to sign would carry it
        forms.update({value, quote(value), quote(value, safe=""), quote(value, safe="~"), quote_plus(value),
                      quote(quote(value, safe=""), safe="")})
    return sorted(forms, key=len, reverse=True)  # longest first: a value inside another goes with it


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without credentials: every credential in the environment (CREDENTIAL_ENV_VARS),
    every value given to `mask`, and `secrets`, raw or percent-encoded, and anything shaped
    like one (query strings, Signature / AccessKeyId / SecurityToken parameters,
    Authorization headers, access key ids, STS tokens) become "<redacted>"."""
    for value in _known_secrets(secrets):
        text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# --- the boundary: a cloud's error codes by meaning ------------------------------------


def _matches(code: str, entries: Collection[str]) -> bool:
    return any(code == e or code.startswith(e[:-1] if e.endswith("*") else e + ".") for e in entries)


@dataclass(frozen=True)
class ErrorCodes:
    """One cloud's error codes by meaning, checked in this order: capacity, quota,
    throttled, not found, auth, config, transient. An entry matches the code itself and
    its dotted sub-codes ("Throttling" matches "Throttling.User"); an entry ending in
    "*" matches every code it begins ("InvalidParameter*" matches "InvalidParameterValue").
    A code in no table: HTTP 429 is throttling, 5xx transient, anything else a fatal
    `ProviderError` (never retried)."""

    provider: str
    capacity: Collection[str] = ()
    quota: Collection[str] = ()
    throttled: Collection[str] = ()
    not_found: Collection[str] = ()
    auth: Collection[str] = ()
    config: Collection[str] = ()
    transient: Collection[str] = ()

    def error(self, action: str, code: str, message: str, *, status: int = 0, zone: str = "",
              instance_type: str = "") -> ProviderError:
        """The burst error for one coded answer of the cloud (never None)."""
        if _matches(code, self.capacity):
            return self.no_stock(message, code=code, zone=zone, instance_type=instance_type)
        text = f"{self.provider} {action}: {code}: {message}"
        kind = next((kind for kind, entries in (
            (QuotaExceededError, self.quota), (ThrottledError, self.throttled), (InstanceNotFoundError, self.not_found),
            (ProviderAuthError, self.auth), (ProviderConfigError, self.config), (TransientProviderError, self.transient),
        ) if _matches(code, entries)), None)  # fmt: skip
        if kind is None:
            kind = ThrottledError if status == 429 else TransientProviderError if status >= 500 else ProviderError
        return kind(text, code=code, provider=self.provider)

    def no_stock(self, message: str, *, code: str, zone: str, instance_type: str,
                 created: Sequence["Instance"] = ()) -> InsufficientCapacityError:
        return InsufficientCapacityError.no_stock(self.provider, message, code=code, zone=zone,
                                                  instance_type=instance_type, created=created)


@contextlib.contextmanager
def map_errors(catch: Callable[[], tuple[type[BaseException], ...]],
               translate: Callable[[BaseException], ProviderError]) -> Iterator[None]:
    """The provider boundary: an exception of the classes `catch()` names (the SDK's, looked
    up only when one is raised, so the SDK stays lazily imported) becomes `translate(exc)`.
    The SDK exception is not chained (`from None`): its text may hold a signed URL, and a
    logged traceback would print it; the mapped error keeps its code and scrubbed text."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        if not isinstance(exc, catch()):
            raise
        raise translate(exc) from None
