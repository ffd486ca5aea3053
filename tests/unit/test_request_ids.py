"""One rule for a caller's request id, at the gateway and at every service
(identity_runtime.request_ids): it is stored in audit entries and rows that
outlive the customer's erasure, so an id that could carry personal data is
replaced by a new one."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime

import pytest

from identity_runtime import context, logs, mesh
from identity_runtime.authz import CallerAuthInterceptor
from identity_runtime.errors import DomainError
from identity_runtime.interceptors import CallContextInterceptor
from identity_runtime.meshauth import TokenVerifier, TrustedKeys
from identity_runtime.request_ids import client_request_id, request_id_or_new
from services.audit import redaction
from services.audit.chain import Draft, Entry, validate_draft
from tests.support.meshauth import trusted_keys_json

NEW_ID = re.compile(r"[0-9a-f]{32}")
PERSONAL = (
    "3273024107950003",
    "3273-0241-0795-0003",
    "3273 0241 0795 0003",
    "3273_0241_0795_0003",
    "Siti Rahayu <siti@example.com> 0812 3456 7890",
    "siti@example.com",
    "0812-3456-7890",
    "a6281234567890",
    "ea3273024107950003a7ffffffffffff",  # a NIK inside the platform's own id shape
    "x" * 129,
)
SANE = (
    "req-123",
    "partner-req.42:a_b-c",
    "550e8400-e29b-41d4-a716-446655440000",
    "3f2b8c1d9e7a4b6c8d0e1f2a3b4c5d6e",
    "a123456789012345678901234567ffff",  # 32 hex: a run of digits by chance
)


@pytest.mark.parametrize("value", PERSONAL)
def test_an_id_that_could_hold_personal_data_is_not_taken(value: str) -> None:
    assert client_request_id(value) is None
    new = request_id_or_new(value)
    assert new != value and NEW_ID.fullmatch(new)


@pytest.mark.parametrize("value", SANE)
def test_an_ordinary_id_a_uuid_and_32_hex_are_taken(value: str) -> None:
    assert client_request_id(value) == value
    assert request_id_or_new(value) == value


@pytest.mark.parametrize("value", [None, ""])
def test_no_id_gets_a_new_one(value: str | None) -> None:
    assert client_request_id(value) is None
    assert NEW_ID.fullmatch(request_id_or_new(value))


def test_the_platforms_own_ids_pass_the_rule() -> None:
    # Else the next hop replaces the gateway's id (about one random id in 500
    # holds a NIK-shaped run of 16 digits) and the hops no longer correlate.
    for _ in range(20_000):
        own = context.new_request_id()
        assert NEW_ID.fullmatch(own) and client_request_id(own) == own


class _Call:
    """What the call context interceptor reads of a grpc.aio call."""

    def __init__(self, request_id: str) -> None:
        self.metadata = (("x-request-id", request_id),)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def time_remaining(self) -> None:
        return None


@pytest.mark.parametrize(
    "sent",
    [
        "3273024107950003",
        "3273_0241_0795_0003",
        "Siti Rahayu <siti@example.com> 0812 3456 7890",
    ],
)
def test_a_direct_callers_id_holding_personal_data_is_replaced(sent: str) -> None:
    bound = CallContextInterceptor(5.0).context_for("/pkg.Service/Call", _Call(sent))  # type: ignore[arg-type]
    assert bound.request_id != sent and NEW_ID.fullmatch(bound.request_id)


@pytest.mark.parametrize("sent", SANE)
def test_a_direct_callers_sane_id_is_kept(sent: str) -> None:
    bound = CallContextInterceptor(5.0).context_for("/pkg.Service/Call", _Call(sent))  # type: ignore[arg-type]
    assert bound.request_id == sent


def _draft(request_id: str) -> Draft:
    return Draft(
        tenant_id="org_a",
        actor="service:kyc-tier",
        action="customer.erase",
        subject="customer:cus_1",
        outcome="success",
        request_id=request_id,
    )


@pytest.mark.parametrize("value", PERSONAL[:-1])
def test_the_audit_chain_stores_no_request_id_that_could_hold_personal_data(value: str) -> None:
    # Chained as "", not refused: the outbox relay would retry a refusal for ever.
    assert validate_draft(_draft(value)).request_id == ""


@pytest.mark.parametrize("value", ("", *SANE))
def test_the_audit_chain_stores_a_sane_request_id_as_sent(value: str) -> None:
    assert validate_draft(_draft(value)).request_id == value


def test_the_audit_chain_still_refuses_an_overlong_request_id() -> None:
    with pytest.raises(DomainError) as refused:
        validate_draft(_draft("x" * 129))
    assert refused.value.metadata["field"] == "request_id"


def test_an_old_erasures_redaction_record_does_not_copy_its_request_id() -> None:
    old = Entry(
        **vars(_draft("Siti Rahayu <siti@example.com> 0812 3456 7890")),
        sequence=7,
        entry_id="aud_1",
        recorded_at=datetime.now(UTC),
        previous_hmac="",
        entry_hmac="ab" * 32,
        key_id="audit-2026-01",
    )
    record = redaction._record(old, 2, 7)
    assert record is not None and record.request_id == ""


class _Refused(Exception):
    pass


class _UnauthenticatedCall:
    """A call without credentials, as the caller-auth interceptor sees it."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", self.request_id),)

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    async def abort(self, *_: object) -> None:
        raise _Refused


@pytest.mark.parametrize("sent", ["Siti_Rahayu.6281234567890", "Siti Rahayu <siti@example.com>"])
def test_a_refused_call_logs_no_request_id_that_could_hold_personal_data(
    sent: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("audit", "INFO", "json")
    capsys.readouterr()
    verifier = TokenVerifier(TrustedKeys.from_json(trusted_keys_json()))
    auth = CallerAuthInterceptor("audit", verifier, packages=["identity.audit.v1"])
    with pytest.raises(_Refused):
        asyncio.run(auth.admit(mesh.AUDIT_APPEND, _UnauthenticatedCall(sent)))  # type: ignore[arg-type]
    (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines() if "call refused" in x]
    assert line["request_id"] == "" and "Rahayu" not in json.dumps(line)
