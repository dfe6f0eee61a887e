"""burst.provider.errors.scrub: no credential survives it, in any of the shapes SDKs print."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burst.provider.errors import ErrorCodes, ProviderAuthError, ProviderError, ThrottledError, TransientProviderError, mask, scrub

# credentials as the clouds issue them: base64-ish, at least 12 characters
secret = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+=", min_size=12, max_size=80)
prose = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(value=secret, before=prose, after=prose, encode=st.sampled_from([str, quote, quote_plus]))
def test_a_masked_value_never_survives_raw_or_percent_encoded(value, before, after, encode):
    mask(value)
    text = scrub(before + encode(value) + after)
    assert value not in text and encode(value) not in text


@settings(max_examples=100, deadline=None)
@given(key_id=secret, token=secret, signature=secret)
def test_signed_query_strings_lose_their_credentials_even_unmasked(key_id, token, signature):
    url = (f"HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: "
           f"/?AccessKeyId={quote(key_id)}&Action=DescribeInstances&SecurityToken={quote(token)}"
           f"&Signature={quote(signature)} (Caused by NewConnectionError)")
    text = scrub(url)
    for value in (key_id, token, signature):
        assert quote(value) not in text
    assert "Caused by NewConnectionError" in text  # the useful part stays


@pytest.mark.parametrize("text, kept, gone", [
    ("server string to sign is:POST&%2F&AccessKeyId%3Dkid-123456%26Action%3DRun%26SecurityToken%3Dsts%252Fx%26",
     "POST&%2F&", ["kid-123456", "sts%252Fx"]),
    ("Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/ec2/aws4_request",
     "Authorization", ["AKIAIOSFODNN7EXAMPLE"]),
    ("key ASIAIOSFODNN7EXAMPLE and LTAI5tAbCdEfGhIjKlMn in a sentence", "in a sentence",
     ["ASIAIOSFODNN7EXAMPLE", "LTAI5tAbCdEfGhIjKlMn"]),
    ("token " + "QmFzZTY0" * 20 + " ends", "ends", ["QmFzZTY0" * 20]),
    ('Could not connect to the endpoint URL: "http://127.0.0.1:1/" Is it up?', "Is it up?", []),
])
def test_the_shapes_sdks_print(text, kept, gone):
    out = scrub(text)
    assert kept in out and all(g not in out for g in gone), out


def test_every_provider_error_scrubs_its_message(monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "sts-token-from-the-environment")
    err = ProviderAuthError("aliyun: refused /?SecurityToken=sts-token-from-the-environment&x=1 and "
                            "sts-token-from-the-environment")
    assert "sts-token-from-the-environment" not in str(err) and "aliyun: refused" in str(err)


@pytest.mark.parametrize("code, status, kind", [
    ("Throttling.User", 400, ThrottledError),
    ("Whatever", 429, ThrottledError),
    ("Whatever", 503, TransientProviderError),
    ("InvalidParameterValue", 400, "config"),
    ("Nope", 400, ProviderError),
])
def test_error_codes_match_dotted_sub_codes_and_star_prefixes(code, status, kind):
    from burst.provider.errors import ProviderConfigError

    codes = ErrorCodes(provider="x", throttled={"Throttling"}, config={"InvalidParameter*"})
    err = codes.error("Call", code, "msg", status=status)
    assert type(err) is (ProviderConfigError if kind == "config" else kind)
    # only "*" entries are plain prefixes: "Throttling" does not match "ThrottlingX"
    assert type(codes.error("Call", "ThrottlingX", "m", status=400)) is ProviderError


def test_importing_the_cli_and_the_cloud_providers_loads_no_sdk():
    code = ("import sys, burst.cli, burst_providers.aws, burst_providers.aliyun, burst_providers.aws.adaptor, "
            "burst_providers.aliyun.adaptor, burst.provider.cloud; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'aliyunsdkcore', 'aliyunsdkecs')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_missing_sdk_is_a_config_error_naming_the_package():
    from burst.provider.errors import ProviderConfigError
    from burst.provider.lazy import LazyImport

    missing = LazyImport("burst_no_such_sdk", provider="aws", package="boto3")
    with pytest.raises(ProviderConfigError, match="install boto3"):
        missing.Session
    assert not missing.loaded
