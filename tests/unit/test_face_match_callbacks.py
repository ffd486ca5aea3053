"""Face Match's callback safety: which callback URLs are accepted, in
development (what `identity up` runs) as in production. The policy is the
platform's one egress policy, the same as webhooks' (identity_runtime.egress)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from identity_runtime import meshtls, signing
from identity_runtime.addresses import IPAddress
from identity_runtime.egress import (
    DELIVERY_ERRORS,
    GuardedBackend,
    GuardedPoster,
    TargetRefused,
    address_allowed,
    ca_file_problem,
)
from identity_runtime.errors import InvalidArgument
from identity_runtime.settings import SettingsError, load_settings
from identity_runtime.signing import verify_headers
from services.face_match.settings import FaceMatchSettings
from services.face_match.submissions.creation import check_callback_url
from services.kyc_tier.webhook_targets import check_url as check_webhook_url
from tests.support.face_match import env

# The black-box probe's forms (F2), each accepted before in development, plus
# the other spellings kyc-tier's webhooks refuse.
PROBE_FORMS = [
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.1/x",
    "https://012.0.0.1/",
    "https://[::ffff:169.254.169.254]/",
    "https://[::ffff:a9fe:a9fe]/",
    "http://192.0.2.2:18192/fm-callback",
    "https://192.168.0.10/cb",
    "https://100.64.0.1/cb",
    "https://[fd00::1]/cb",
    "https://[fe80::1]/cb",
    "https://0.0.0.0/cb",
    "https://2852039166/cb",
    "https://0xa9fea9fe/cb",
    "https://0251.0376.0251.0376/cb",
    "https://169.254.43518/cb",
    "https://10.1/cb",
    "https://224.0.0.1/cb",
    # IPv6 wrapping a non-public IPv4 address (the re-probe): 6to4 of
    # 192.0.2.2 and of 169.254.169.254, NAT64 of 169.254.169.254 and of
    # 10.0.0.1, NAT64's local-use prefix, 6to4 of loopback.
    "http://[2002:c000:0202::1]:18192/",
    "https://[2002:a9fe:a9fe::]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[64:ff9b::a00:1]/",
    "https://[64:ff9b:1::808:808]/",
    "https://[2002:7f00:1::]/",
]


@pytest.mark.parametrize("url", PROBE_FORMS)
@pytest.mark.parametrize("allow_loopback", [True, False])
def test_non_public_addresses_are_refused_in_every_environment(
    url: str, allow_loopback: bool
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_callback_url(url, allow_loopback)
    assert refused.value.reason == "INVALID_FIELD"
    assert refused.value.metadata == {"field": "callback_url"}
    assert refused.value.message.startswith("callback_url: ")
    # Never the value (it may carry a partner's secret path).
    assert url.split("//", 1)[1].split("/", 1)[0] not in refused.value.message


@pytest.mark.parametrize("url", PROBE_FORMS)
def test_the_same_urls_are_refused_as_webhooks(url: str) -> None:
    with pytest.raises(InvalidArgument):
        check_webhook_url(url, allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/cb",
        "https://127.1/cb",
        "https://[::1]/cb",
        "https://localhost/cb",
        "https://0177.0.0.1/cb",
    ],
)
def test_loopback_only_when_allowed(url: str) -> None:
    check_callback_url(url, allow_loopback=True)
    with pytest.raises(InvalidArgument) as refused:
        check_callback_url(url, allow_loopback=False)
    assert refused.value.metadata == {"field": "callback_url"}


def test_https_without_credentials_unless_loopback_is_allowed() -> None:
    check_callback_url("https://partner.example/cb", allow_loopback=False)
    check_callback_url("", allow_loopback=False)  # no callback
    for url in (
        "http://partner.example/cb",
        "https://user:pw@partner.example/cb",
        "ftp://x/y",
        "https://partner.example/cb#frag",
        "https://" + "a" * 2050 + ".example/cb",
    ):
        with pytest.raises(InvalidArgument):
            check_callback_url(url, allow_loopback=False)
    # Development opens plain http (for a receiver on this machine) …
    check_callback_url("http://127.0.0.1:9000/cb", allow_loopback=True)
    # … but credentials stay refused.
    with pytest.raises(InvalidArgument):
        check_callback_url("http://u:p@127.0.0.1:9000/cb", allow_loopback=True)


def test_public_addresses_and_names_stay_allowed() -> None:
    for url in (
        "https://8.8.8.8/cb",
        "https://cafe.bad/cb",
        "https://partner.example/cb",
        # 6to4 and NAT64 of a public IPv4 address.
        "https://[2002:808:808::1]/cb",
        "https://[64:ff9b::808:808]/cb",
        "https://[2001:4860:4860::8888]/cb",
    ):
        check_callback_url(url, allow_loopback=False)


def test_connect_time_judges_the_ipv4_address_a_wrapped_one_reaches() -> None:
    # What GuardedBackend asks of every resolved address.
    for wrapped in ("2002:a9fe:a9fe::", "64:ff9b::a00:1", "64:ff9b:1::808:808", "2002:7f00:1::"):
        assert not address_allowed(ipaddress.ip_address(wrapped), loopback=True)
    for public in ("2002:808:808::1", "64:ff9b::808:808"):
        assert address_allowed(ipaddress.ip_address(public), loopback=False)


def test_callbacks_are_signed_like_webhooks() -> None:
    headers = signing.signature_headers(b"secret", b'{"a":1}')
    assert headers["X-Identity-Signature"] == headers["X-Quantum-Signature"]
    assert headers["X-Identity-Signature"].startswith("sha256=")
    assert verify_headers(b"secret", b'{"a":1}', headers)
    assert not verify_headers(b"secret", b'{"a":2}', headers)


@pytest.mark.parametrize(
    "url", ["https://[zz]/x", "https://[::1/x", "http://[::1", "https://partner.example:99999/cb"]
)
def test_unparseable_callback_urls_are_invalid_fields_not_crashes(url: str) -> None:
    # urlsplit raises ValueError on these; the caller gets INVALID_FIELD.
    with pytest.raises(InvalidArgument) as refused:
        check_callback_url(url, allow_loopback=True)
    assert refused.value.reason == "INVALID_FIELD"
    assert refused.value.metadata["field"] == "callback_url"


# -- host spellings (probe3 finding 8) ---------------------------------------
# A trailing dot (a fully qualified name) hid a literal address or localhost
# from the checks, and a host that is no DNS name at all was registered.
TRAILING_DOT_FORMS = [
    "https://10.0.0.1./cb",
    "https://192.168.1.1./x",
    "https://169.254.169.254./latest/meta-data/",
    "https://0x0a000001./cb",
    "https://10.1./cb",
]
LOCALHOST_FORMS = ["https://LOCALHOST./x", "https://localhost./x", "https://api.localhost./x"]
INVALID_HOSTS = [
    "https://exa mple.com/",
    "https://under_score.example/cb",
    "https://a..b.example/cb",
    "https://.example/cb",
    "https://example.com../cb",
    "https://-partner.example/cb",
    "https://partner-.example/cb",
    "https://" + "a" * 64 + ".example/cb",
    "https://" + ".".join(["a" * 63] * 4) + "/cb",  # 255 characters
    "https://%31%30.0.0.1/cb",
    "https://1.2.3.4.5/cb",
    "https://partner.0x10/cb",
    "https://bücher.example/cb",
    "https://./cb",
]
VALID_HOSTS = [
    "https://partner.example./cb",
    "https://8.8.8.8./cb",
    "https://Partner.Example/cb",
    "https://xn--bcher-kva.example/cb",  # bücher.example, its A-label
    "https://a-b.example/cb",
    "https://" + "a" * 63 + ".example/cb",
    "https://" + ".".join(["a" * 63] * 3 + ["a" * 61]) + "/cb",  # 253 characters
    "https://" + ".".join(["a" * 63] * 3 + ["a" * 61]) + "./cb",  # and its trailing dot
    "https://123.example/cb",
    "https://deadbeef/cb",
]


@pytest.mark.parametrize("url", TRAILING_DOT_FORMS + INVALID_HOSTS)
@pytest.mark.parametrize("allow_loopback", [True, False])
def test_trailing_dot_addresses_and_invalid_hosts_are_refused(
    url: str, allow_loopback: bool
) -> None:
    for check, field in ((check_callback_url, "callback_url"), (check_webhook_url, "url")):
        with pytest.raises(InvalidArgument) as refused:
            check(url, allow_loopback)
        assert refused.value.reason == "INVALID_FIELD"
        assert refused.value.metadata == {"field": field}
        assert url.split("//", 1)[1].split("/", 1)[0] not in refused.value.message


def test_what_is_wrong_with_the_host_is_said() -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_callback_url("https://10.0.0.1./cb", allow_loopback=False)
    assert "private, loopback or link-local" in refused.value.message
    with pytest.raises(InvalidArgument) as refused:
        check_callback_url("https://exa_mple.com/", allow_loopback=False)
    assert refused.value.message == (
        "callback_url: must name a valid host (a DNS name or an IP address)"
    )
    with pytest.raises(InvalidArgument) as refused:
        check_callback_url("https://exa mple.com/", allow_loopback=False)
    assert refused.value.message == (
        "callback_url: must name a valid host (a DNS name or an IP address)"
    )
    with pytest.raises(InvalidArgument) as refused:
        check_callback_url("https://partner.example/a b", allow_loopback=False)
    assert refused.value.message == (
        "callback_url: must be ASCII without spaces (percent-encode other characters)"
    )
    with pytest.raises(InvalidArgument) as refused:
        check_callback_url("https://bücher.example/cb", allow_loopback=False)
    assert "ASCII (xn--) form" in refused.value.message


@pytest.mark.parametrize("url", LOCALHOST_FORMS)
def test_localhost_with_a_trailing_dot_is_loopback(url: str) -> None:
    check_callback_url(url, allow_loopback=True)
    check_webhook_url(url, allow_loopback=True)
    with pytest.raises(InvalidArgument):
        check_callback_url(url, allow_loopback=False)
    with pytest.raises(InvalidArgument):
        check_webhook_url(url, allow_loopback=False)


@pytest.mark.parametrize("url", VALID_HOSTS)
def test_valid_host_names_stay_registrable(url: str) -> None:
    check_callback_url(url, allow_loopback=False)
    assert check_webhook_url(url, allow_loopback=False) == url


class _Resolver:
    """Answers 10.0.0.1 for anything, keeping what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        return [ipaddress.ip_address("10.0.0.1")]


@pytest.mark.parametrize("host", ["10.0.0.1.", "192.168.1.1.", "LOCALHOST.", "localhost."])
async def test_connect_time_judges_a_trailing_dot_host_as_registration_does(host: str) -> None:
    """GuardedBackend refuses the host's spelling before resolving it (a
    resolver failed on these with dns_failure: the class now says why)."""
    resolver = _Resolver()
    with pytest.raises(TargetRefused):
        await GuardedBackend(allow_loopback=False, resolver=resolver).connect_tcp(host, 443)
    assert resolver.asked == []


async def test_connect_time_still_resolves_a_fully_qualified_name() -> None:
    resolver = _Resolver()
    with pytest.raises(TargetRefused):  # refused for the address it resolves to
        await GuardedBackend(allow_loopback=False, resolver=resolver).connect_tcp(
            "partner.example.", 443
        )
    assert resolver.asked == ["partner.example."]


def _problems(tmp_path: Path, **extra: str) -> str:
    """Every settings problem, lower-cased, in one string ("" when none)."""
    try:
        load_settings(FaceMatchSettings, "FACE_MATCH", env("sqlite://", tmp_path, **extra))
    except SettingsError as exc:
        return "\n".join(exc.problems).lower()
    return ""


def test_production_refuses_loopback_callbacks_and_a_private_default(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path, FACE_MATCH_ENVIRONMENT="production", FACE_MATCH_CALLBACK_ALLOW_LOOPBACK="true"
    )
    assert "callback_allow_loopback" in problems
    problems = _problems(tmp_path, FACE_MATCH_DEFAULT_CALLBACK_URL="https://10.0.0.1/cb")
    assert "default_callback_url" in problems
    allowed = _problems(
        tmp_path,
        FACE_MATCH_CALLBACK_ALLOW_LOOPBACK="true",
        FACE_MATCH_DEFAULT_CALLBACK_URL="http://127.0.0.1:9/cb",
    )
    assert allowed == ""


# -- extra CA certificates for https receivers (a partner's private CA) ---------


def _ca_settings(service: str, variable: str, ca_file: Path, tmp_path: Path) -> Any:
    """Load `service`'s settings with `variable` naming `ca_file`."""
    from services.kyc_tier.settings import KycTierSettings
    from tests.support import kyc_tier_env

    if service == "face_match":
        values = env("sqlite://", tmp_path / "bucket", **{variable: str(ca_file)})
        return load_settings(FaceMatchSettings, "FACE_MATCH", values)
    values = kyc_tier_env("sqlite://") | {variable: str(ca_file)}
    return load_settings(KycTierSettings, "KYC_TIER", values)


CA_SETTINGS = [
    ("face_match", "FACE_MATCH_CALLBACK_CA_FILE", "callback_ca_file"),
    ("kyc_tier", "KYC_TIER_WEBHOOK_CA_FILE", "webhook_ca_file"),
]


@pytest.mark.parametrize(("service", "variable", "name"), CA_SETTINGS)
def test_a_pem_ca_file_is_accepted(service: str, variable: str, name: str, tmp_path: Path) -> None:
    ca_cert, _ = meshtls.new_ca("partner private CA")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_cert)
    assert getattr(_ca_settings(service, variable, ca_file, tmp_path), name) == ca_file
    assert ca_file_problem(ca_file) == "" and ca_file_problem(None) == ""


@pytest.mark.parametrize(("service", "variable", "name"), CA_SETTINGS)
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "is not a readable file"),  # missing
        ("directory", "is not a readable file"),
        (b"", "holds no PEM CA certificate"),
        (b"not a certificate\n", "holds no PEM CA certificate"),
        # The CA's private key instead of its certificate.
        ("key", "holds no PEM CA certificate"),
    ],
)
def test_an_unreadable_or_non_pem_ca_file_refuses_to_start(
    service: str,
    variable: str,
    name: str,
    content: bytes | str | None,
    problem: str,
    tmp_path: Path,
) -> None:
    ca_file = tmp_path / "ca.pem"
    if content == "directory":
        ca_file.mkdir()
    elif content == "key":
        ca_file.write_bytes(meshtls.new_ca("partner private CA")[1])
    elif isinstance(content, bytes):
        ca_file.write_bytes(content)
    with pytest.raises(SettingsError) as refused:
        _ca_settings(service, variable, ca_file, tmp_path)
    assert f"{variable}: {problem}" in str(refused.value)
    assert ca_file_problem(ca_file) == problem


# The re-probe (N1, N3): URLs the HTTP client cannot send (it raised on a
# non-ASCII path at delivery), and spellings that hid or faked the host.
UNSENDABLE_OR_HIDDEN_HOST = [
    "https://partner.example/hooks/caf\u00e9",
    "https://partner.example/a b",
    "https://partner.example/cb?x=\u00e9",
    "https://partner.example/cb\x7f",
    "https://[v1.x]/x",
    "https://@partner.example/",
    "https://:@partner.example/",
]


@pytest.mark.parametrize("url", UNSENDABLE_OR_HIDDEN_HOST)
def test_urls_the_client_cannot_send_and_hidden_hosts_are_refused(url: str) -> None:
    for check, field in ((check_callback_url, "callback_url"), (check_webhook_url, "url")):
        with pytest.raises(InvalidArgument) as refused:
            check(url, True)
        assert refused.value.reason == "INVALID_FIELD"
        assert refused.value.metadata == {"field": field}


def test_a_percent_encoded_path_stays_registrable() -> None:
    url = "https://partner.example/hooks/caf%C3%A9?x=%20"
    check_callback_url(url, allow_loopback=False)
    assert check_webhook_url(url, allow_loopback=False) == url


class _Loopback:
    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1")]


async def test_a_stored_url_the_client_cannot_send_is_a_failed_attempt_not_an_exception() -> None:
    """A URL stored before the ASCII rule: one delivery fails as invalid_url
    (the poster raised TypeError before, which ended the relay's round)."""
    poster = GuardedPoster(allow_loopback=True, timeout_seconds=2.0, resolver=_Loopback())
    result = await poster.post("https://partner.example/hooks/caf\u00e9", b"{}", [])
    assert (result.delivered, result.http_status, result.error) == (False, 0, "invalid_url")
    assert "invalid_url" in DELIVERY_ERRORS
