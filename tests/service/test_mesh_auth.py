"""Every RPC of every service authenticates its caller: generated from the descriptors.

The six real services run against one database (SQLite and PostgreSQL), as
`identity up` runs them, over mutual TLS (certificates from the tests' CA;
the test client presents the gateway's unless a test says otherwise). For
each RPC the contracts declare, with an empty
request (the caller is checked before the request is read):

- no credentials                             -> UNAUTHENTICATED / CALLER_UNAUTHENTICATED
- a bare `x-identity-org` (and scopes) header -> UNAUTHENTICATED / CALLER_UNAUTHENTICATED
- a token for a forged organisation signed by a key the mesh does not trust,
  under an unknown key id or a trusted one     -> UNAUTHENTICATED / CALLER_UNAUTHENTICATED
- a partner's token (the gateway's, for an API key) on a mesh-only RPC
                                             -> PERMISSION_DENIED / SCOPE_INSUFFICIENT

and the audit log stays empty after every forged or partner append, while
kyc-tier's own append goes in. That valid calls still work is what the rest
of the suite shows (every test reaches the services with tokens from
tests.support.meshauth).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

from identity_cli.schema import migrate_all
from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_platform_api.kyc_tier.v1 import api_keys_pb2, api_keys_pb2_grpc
from identity_runtime import descriptors, mesh
from identity_runtime.authz import required_scope
from identity_runtime.clients import open_channel
from identity_runtime.meshauth import AUDIENCE, key_id
from identity_runtime.server import RunningServer
from identity_runtime.status import error_info, status_from_rpc_error
from tests.support.gateway import add_key, create_org_and_key
from tests.support.mesh import mesh_env, postgres_schema, start_services
from tests.support.meshauth import (
    caller_metadata,
    client_tls,
    signing_key_pem,
    unnamed_client_tls,
)

MESH_PACKAGES = {s.package for s in mesh.SERVICES}
RPCS: list[MethodDescriptor] = [
    method
    for service in descriptors.services()
    if descriptors.service_package(service.full_name) in MESH_PACKAGES
    for method in service.methods
]
RPC_IDS = [f"{m.containing_service.name}.{m.name}" for m in RPCS]
MESH_ONLY = [m for m in RPCS if required_scope(m) == "mesh"]
MESH_ONLY_IDS = [f"{m.containing_service.name}.{m.name}" for m in MESH_ONLY]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "postgres":
        with postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('mesh-auth') / 'identity.db'}"
    migrate_all(url)
    yield url


@pytest.fixture(scope="module")
async def servers(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, RunningServer]]:
    running = await start_services(mesh_env(database_url, Path(tmp_path_factory.mktemp("auth"))))
    yield running
    for server in running.values():
        await server.stop(0)


async def call(
    servers: dict[str, RunningServer], method: MethodDescriptor, metadata: list[tuple[str, str]]
) -> tuple[grpc.StatusCode, str]:
    """The RPC with an empty request; (code, reason) of the answer (OK, "" on success)."""
    package = descriptors.service_package(method.containing_service.full_name)
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    path = f"/{method.containing_service.full_name}/{method.name}"
    assert not method.client_streaming, path
    async with tls_channel(servers[package]) as channel:
        try:
            if method.server_streaming:
                stream = channel.unary_stream(
                    path,
                    request_serializer=request_class.SerializeToString,
                    response_deserializer=response_class.FromString,
                )(request_class(), metadata=metadata, timeout=30)
                async for _ in stream:
                    pass
            else:
                await channel.unary_unary(
                    path,
                    request_serializer=request_class.SerializeToString,
                    response_deserializer=response_class.FromString,
                )(request_class(), metadata=metadata, timeout=30)
        except grpc.aio.AioRpcError as exc:
            info = error_info(status_from_rpc_error(exc))
            return exc.code(), info.reason if info is not None else ""
    return grpc.StatusCode.OK, ""


def tls_channel(server: RunningServer, workload: str = "gateway") -> grpc.aio.Channel:
    """A channel presenting `workload`'s certificate from the tests' CA."""
    return open_channel(server.address, client_tls(workload))


def forged_token(org_id: str, *, kid: str, issuer: str = "gateway") -> str:
    """A well-formed token for `org_id` with every scope, signed by a key of our own."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": "api_key:key_forged",
        "org": org_id,
        "scopes": ["public", "internal", "mesh"],
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 30,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})


UNAUTHENTICATED = (grpc.StatusCode.UNAUTHENTICATED, "CALLER_UNAUTHENTICATED")


def test_the_contracts_declare_every_unrouted_rpc_mesh_only() -> None:
    from identity_platform_api.common.v1 import options_pb2
    from identity_runtime.authz import is_routed

    assert len(RPCS) > 40 and MESH_ONLY
    for method in RPCS:
        if not is_routed(method):
            declared = method.GetOptions().Extensions[options_pb2.access].scope
            assert declared == options_pb2.SCOPE_MESH, method.full_name


@pytest.mark.parametrize("method", RPCS, ids=RPC_IDS)
async def test_a_caller_without_credentials_is_refused(servers, method) -> None:
    assert await call(servers, method, []) == UNAUTHENTICATED


async def call_with_bytes(
    servers: dict[str, RunningServer],
    method: MethodDescriptor,
    metadata: list[tuple[str, str]],
    body: bytes,
    workload: str = "gateway",
) -> tuple[grpc.StatusCode, str]:
    """The RPC with `body` as its encoded request, from `workload`; (code, reason)."""
    package = descriptors.service_package(method.containing_service.full_name)
    path = f"/{method.containing_service.full_name}/{method.name}"
    async with tls_channel(servers[package], workload) as channel:
        open_call = channel.unary_stream if method.server_streaming else channel.unary_unary
        try:
            answer = open_call(path, request_serializer=None, response_deserializer=None)(
                body, metadata=metadata, timeout=30
            )
            if method.server_streaming:
                async for _ in answer:
                    pass
            else:
                await answer
        except grpc.aio.AioRpcError as exc:
            info = error_info(status_from_rpc_error(exc))
            return exc.code(), info.reason if info is not None else ""
    return grpc.StatusCode.OK, ""


NOT_A_MESSAGE = b"\xff\xff"  # a truncated varint: no message parses from it


@pytest.mark.parametrize("method", RPCS, ids=RPC_IDS)
async def test_bytes_that_are_not_a_message_are_refused_after_the_caller(servers, method) -> None:
    """The second black-box probe: grpc answered UNKNOWN, before any credential
    was asked for, and logged a traceback naming the message type."""
    assert await call_with_bytes(servers, method, [], NOT_A_MESSAGE) == UNAUTHENTICATED
    scopes = ("public", "internal", "mesh")
    issuer = "kyc-tier" if method in MESH_ONLY else "gateway"
    caller = caller_metadata("org_probe", scopes=scopes, issuer=issuer)
    code, reason = await call_with_bytes(servers, method, caller, NOT_A_MESSAGE, issuer)
    assert (code, reason) in {
        (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST"),
        # A caller the call graph does not allow is refused before the request is read.
        (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED"),
    }, (code, reason)


@pytest.mark.parametrize("method", RPCS, ids=RPC_IDS)
async def test_a_bare_organisation_header_is_refused(servers, method) -> None:
    metadata = [
        ("x-identity-org", "org_victim"),
        ("x-identity-actor", "service:kyc-tier"),
        ("x-identity-scopes", "public,internal,mesh"),
    ]
    assert await call(servers, method, metadata) == UNAUTHENTICATED


@pytest.mark.parametrize("method", RPCS, ids=RPC_IDS)
async def test_a_token_for_a_forged_organisation_from_an_unknown_key_is_refused(
    servers, method
) -> None:
    attacker = Ed25519PrivateKey.generate().public_key()
    unknown = forged_token("org_victim", kid=key_id("gateway", attacker))
    assert await call(servers, method, [("authorization", f"Bearer {unknown}")]) == (
        UNAUTHENTICATED
    )
    # Naming the gateway's real key id does not help: the signature is checked with it.
    from identity_runtime.meshauth import load_private_key

    gateway_kid = key_id("gateway", load_private_key(signing_key_pem("gateway")).public_key())
    impostor = forged_token("org_victim", kid=gateway_kid)
    assert await call(servers, method, [("authorization", f"Bearer {impostor}")]) == (
        UNAUTHENTICATED
    )


@pytest.mark.parametrize("method", MESH_ONLY, ids=MESH_ONLY_IDS)
async def test_a_partner_token_cannot_call_a_mesh_only_rpc(servers, method) -> None:
    partner = caller_metadata("org_partner", scopes=("public", "internal"), issuer="gateway")
    assert await call(servers, method, partner) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "SCOPE_INSUFFICIENT",
    )


def as_itself(issuer: str, org_id: str = "org_victim") -> list[tuple[str, str]]:
    """A token `issuer` mints for a call it makes as itself: its scopes hold "mesh"."""
    return caller_metadata(org_id, scopes=("mesh",), actor=f"service:{issuer}", issuer=issuer)


@pytest.mark.parametrize("method", MESH_ONLY, ids=MESH_ONLY_IDS)
async def test_the_gateways_mesh_token_opens_only_its_credential_checks(servers, method) -> None:
    """The gateway calls as itself only to resolve a partner's credential (and
    to store a presigned upload): its "mesh" opens no audit append, no
    matching, no embedding, no export, in any organisation (the probe's F4)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    code, reason = await call(servers, method, as_itself("gateway"))
    if path in mesh.MESH_RPCS[mesh.GATEWAY]:
        # Past the caller checks: the empty request itself is what is answered.
        assert reason not in {"CALLER_NOT_ALLOWED", "SCOPE_INSUFFICIENT", "CALLER_UNAUTHENTICATED"}
    else:
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")


async def test_the_gateways_mesh_token_still_resolves_an_api_key(servers, database_url) -> None:
    org_id, _, key = create_org_and_key(database_url, "Key Resolver", ("internal",))
    async with tls_channel(servers["kyc_tier"]) as channel:
        reply = await api_keys_pb2_grpc.ApiKeyServiceStub(channel).AuthenticateApiKey(
            api_keys_pb2.AuthenticateApiKeyRequest(secret=key), metadata=as_itself("gateway", "")
        )
    assert reply.org_id == org_id


async def test_the_gateways_mesh_token_reads_no_enrollment_and_embeds_nothing(servers) -> None:
    from identity_platform_api.embedding.v1 import embedding_pb2, embedding_pb2_grpc
    from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc

    async with tls_channel(servers["matching"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await matching_pb2_grpc.MatchingServiceStub(channel).ListEnrollments(
                matching_pb2.ListEnrollmentsRequest(customer_id="cus_" + "0" * 26),
                metadata=as_itself("gateway"),
            )
    refused = error_info(status_from_rpc_error(caught.value))
    assert (caught.value.code(), refused.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "CALLER_NOT_ALLOWED",
    )
    async with tls_channel(servers["embedding"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await embedding_pb2_grpc.EmbeddingServiceStub(channel).Embed(
                embedding_pb2.EmbedRequest(), metadata=as_itself("gateway")
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # kyc-tier, which runs the pipeline, still reads enrollments (none here).
    async with tls_channel(servers["matching"], "kyc-tier") as channel:
        listed = await matching_pb2_grpc.MatchingServiceStub(channel).ListEnrollments(
            matching_pb2.ListEnrollmentsRequest(customer_id="cus_" + "0" * 26),
            metadata=as_itself("kyc-tier"),
        )
    assert list(listed.enrollments) == []


async def test_a_certificate_without_a_spiffe_name_carries_no_token(servers, database_url) -> None:
    """A client certificate from the mesh CA with only a common name (no SAN)
    names no workload: a token lifted from the gateway is refused from it (F6)."""
    org_id, _, key = create_org_and_key(database_url, "Unnamed Cert", ("internal",))
    partner = caller_metadata(org_id, scopes=("public", "internal"), issuer="gateway")
    async with open_channel(servers["kyc_tier"].address, unnamed_client_tls()) as channel:
        stub = api_keys_pb2_grpc.ApiKeyServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListApiKeys(api_keys_pb2.ListApiKeysRequest(), metadata=partner)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        info = error_info(status_from_rpc_error(caught.value))
        assert info.reason == "CALLER_UNAUTHENTICATED"
        # An API key is not bound to a workload (section 3 of docs/mesh-security.md).
        listed = await stub.ListApiKeys(
            api_keys_pb2.ListApiKeysRequest(), metadata=[("x-api-key", key)]
        )
        assert len(listed.api_keys) == 1
    async with open_channel(servers["audit"].address, unnamed_client_tls("kyc-tier")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await audit_pb2_grpc.AuditServiceStub(channel).Append(
                tier_changed("customer:cus_unnamed"),
                metadata=caller_metadata(org_id, actor="service:kyc-tier", issuer="kyc-tier"),
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The same partner token from the gateway's own certificate works.
    async with tls_channel(servers["kyc_tier"]) as channel:
        listed = await api_keys_pb2_grpc.ApiKeyServiceStub(channel).ListApiKeys(
            api_keys_pb2.ListApiKeysRequest(), metadata=partner
        )
    assert len(listed.api_keys) == 1
    assert await audit_entries(servers, org_id) == 0


async def audit_entries(servers: dict[str, RunningServer], org_id: str) -> int:
    """The org's `kyc.tier_changed` entries (the action every append here uses)."""
    async with tls_channel(servers["audit"]) as channel:
        # Only this action: kyc-tier's relay delivers the key's own
        # `api_key.create` entry for the org at any moment (a pass every second).
        reply = await audit_pb2_grpc.AuditServiceStub(channel).QueryEntries(
            audit_pb2.QueryEntriesRequest(action="kyc.tier_changed", page_size=100),
            metadata=caller_metadata(org_id, scopes=("internal",), issuer="gateway"),
        )
    return len(reply.entries)


def tier_changed(subject: str) -> audit_pb2.AppendRequest:
    return audit_pb2.AppendRequest(
        actor="service:kyc-tier",
        action="kyc.tier_changed",
        subject=subject,
        outcome=audit_pb2.OUTCOME_SUCCESS,
        details={"tier": "premium"},
    )


async def test_a_forged_audit_append_is_impossible(servers, database_url) -> None:
    org_id, _, partner_key = create_org_and_key(database_url, "Audit Victim", ("internal",))
    capture_quality = forged_token(org_id, kid="capture-quality/00", issuer="capture-quality")
    attempts: list[list[tuple[str, str]]] = [
        [],
        [("x-identity-org", org_id), ("x-identity-actor", "service:kyc-tier")],
        [("authorization", f"Bearer {forged_token(org_id, kid='kyc-tier/0000000000000000')}")],
        [("x-api-key", partner_key)],
        [("authorization", f"Bearer {partner_key}")],
        # The partner's own internal-scope token, as the gateway forwards it.
        caller_metadata(org_id, scopes=("public", "internal"), issuer="gateway"),
        # A mesh service that does not call audit (capture-quality has no key
        # either; a token naming it is refused like any unknown key).
        [("authorization", f"Bearer {capture_quality}")],
        # The gateway's own mesh token (what its leaked key, or a compromised
        # gateway, can mint): the gateway writes no audit entries.
        as_itself("gateway", org_id),
    ]
    async with tls_channel(servers["audit"]) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        for metadata in attempts:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Append(tier_changed("customer:cus_forged"), metadata=metadata)
            assert caught.value.code() in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.PERMISSION_DENIED,
            ), metadata
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.AppendBatch(
                    audit_pb2.AppendBatchRequest(
                        entries=[audit_pb2.BatchEntry(entry=tier_changed("customer:cus_forged"))]
                    ),
                    metadata=metadata,
                )
            assert caught.value.code() in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.PERMISSION_DENIED,
            ), metadata
        assert await audit_entries(servers, org_id) == 0
    # kyc-tier, a mesh service that calls audit, appends (with its own certificate).
    async with tls_channel(servers["audit"], "kyc-tier") as channel:
        await audit_pb2_grpc.AuditServiceStub(channel).Append(
            tier_changed("customer:cus_real"),
            metadata=caller_metadata(org_id, actor="service:kyc-tier", issuer="kyc-tier"),
        )
    assert await audit_entries(servers, org_id) == 1


async def test_a_service_outside_the_call_graph_is_refused(servers) -> None:
    """kyc-tier's key is trusted, but kyc-tier does not call itself: its token
    is refused there (only the gateway calls kyc-tier)."""
    async with tls_channel(servers["kyc_tier"], "kyc-tier") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api_keys_pb2_grpc.ApiKeyServiceStub(channel).ListApiKeys(
                api_keys_pb2.ListApiKeysRequest(),
                metadata=caller_metadata("org_x", issuer="kyc-tier"),
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = error_info(status_from_rpc_error(caught.value))
    assert (info.reason, info.metadata["issuer"]) == ("CALLER_NOT_ALLOWED", "kyc-tier")


async def test_kyc_tier_takes_an_internal_callers_api_key_with_its_scopes(
    servers, database_url
) -> None:
    org_id, _, internal_key = create_org_and_key(database_url, "Direct Caller", ("internal",))
    _, public_key = add_key(database_url, org_id, ("public",))
    # An internal service of the bank, with a certificate from the mesh's CA.
    async with tls_channel(servers["kyc_tier"], "ledger") as channel:
        stub = api_keys_pb2_grpc.ApiKeyServiceStub(channel)
        for metadata in (
            [("x-api-key", internal_key)],
            [("authorization", f"ApiKey {internal_key}")],
            [("authorization", f"Bearer {internal_key}")],
        ):
            listed = await stub.ListApiKeys(api_keys_pb2.ListApiKeysRequest(), metadata=metadata)
            assert len(listed.api_keys) == 2
        refusals: list[tuple[Any, tuple[grpc.StatusCode, str]]] = [
            # A public key on an internal RPC: as at the gateway.
            (
                stub.ListApiKeys(
                    api_keys_pb2.ListApiKeysRequest(), metadata=[("x-api-key", public_key)]
                ),
                (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_INSUFFICIENT"),
            ),
            (
                stub.ListApiKeys(
                    api_keys_pb2.ListApiKeysRequest(), metadata=[("x-api-key", "idk_" + "x" * 40)]
                ),
                (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID"),
            ),
            # An RPC without an HTTP route takes mesh tokens only.
            (
                stub.AuthenticateApiKey(
                    api_keys_pb2.AuthenticateApiKeyRequest(secret=public_key),
                    metadata=[("x-api-key", internal_key)],
                ),
                UNAUTHENTICATED,
            ),
            # Two credentials at once are refused rather than guessed between.
            (
                stub.ListApiKeys(
                    api_keys_pb2.ListApiKeysRequest(),
                    metadata=[("x-api-key", internal_key), *caller_metadata(org_id)],
                ),
                UNAUTHENTICATED,
            ),
        ]
        for pending, expected in refusals:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await pending
            info = error_info(status_from_rpc_error(caught.value))
            assert (caught.value.code(), info.reason) == expected


@pytest.mark.parametrize("service", [s.package for s in mesh.SERVICES if s.package != "kyc_tier"])
async def test_other_services_refuse_api_keys(servers, database_url, service) -> None:
    """Only kyc-tier resolves API keys; every other service takes mesh tokens only."""
    _, _, key = create_org_and_key(database_url, f"Key for {service}", ("internal",))
    method = next(m for m in RPCS if m.containing_service.full_name.split(".")[1] == service)
    assert await call(servers, method, [("x-api-key", key)]) == UNAUTHENTICATED


# --- mutual TLS -------------------------------------------------------------------


async def get_model_info(channel: grpc.aio.Channel, metadata: list[tuple[str, str]]) -> Any:
    from identity_platform_api.embedding.v1 import embedding_pb2, embedding_pb2_grpc

    return await embedding_pb2_grpc.EmbeddingServiceStub(channel).GetModelInfo(
        embedding_pb2.GetModelInfoRequest(), metadata=metadata, timeout=10
    )


async def test_only_a_client_certificate_from_the_mesh_ca_gets_a_connection(servers) -> None:
    from identity_runtime import meshtls

    embedding = servers["embedding"]
    token = caller_metadata("org_a", issuer="kyc-tier")
    # The mesh's own: the token's issuer presenting its certificate.
    async with tls_channel(embedding, "kyc-tier") as channel:
        assert (await get_model_info(channel, token)).contract.dimension > 0
    ca = client_tls("kyc-tier").ca
    other_ca_cert, other_ca_key = meshtls.new_ca("someone else's CA")
    stranger_cert, stranger_key = meshtls.issue(
        other_ca_cert, other_ca_key, "kyc-tier", meshtls.LOCAL_HOSTS
    )
    refused = [
        grpc.aio.insecure_channel(embedding.address),  # plaintext
        grpc.aio.secure_channel(embedding.address, grpc.ssl_channel_credentials(ca)),  # no cert
        open_channel(embedding.address, meshtls.MeshTls(ca, stranger_cert, stranger_key)),
    ]
    for channel in refused:
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await get_model_info(channel, token)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_token_only_counts_from_the_workload_it_was_minted_by(servers) -> None:
    """kyc-tier's token replayed from the gateway's connection is refused."""
    async with tls_channel(servers["embedding"], "gateway") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await get_model_info(channel, caller_metadata("org_a", issuer="kyc-tier"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(status_from_rpc_error(caught.value)).reason == "CALLER_UNAUTHENTICATED"


async def test_probes_get_a_plaintext_health_only_port(database_url, tmp_path) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from identity_runtime.clients import open_channel as _open
    from services.audit.service import SPEC as AUDIT
    from tests.support import start_service

    env = mesh_env(database_url, tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        health_port = probe.getsockname()[1]
    audit = await start_service(AUDIT, {**env, "AUDIT_HEALTH_PORT": str(health_port)})
    # Generous deadlines: a loaded 2-core CI machine can take seconds to answer.
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{health_port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=30
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            # Nothing but health there.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await audit_pb2_grpc.AuditServiceStub(channel).VerifyChain(
                    audit_pb2.VerifyChainRequest(),
                    metadata=caller_metadata("org_a", issuer="kyc-tier"),
                    timeout=30,
                )
            assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # The service port itself answers health over mutual TLS only.
        async with _open(audit.address, client_tls("gateway")) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=30
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await audit.stop(0)
