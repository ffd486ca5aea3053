"""What a caller may do as itself (`identity_runtime.mesh.MESH_RPCS`), checked by
the caller-auth interceptor with real tokens signed by the tests' keys.

The gateway is the internet-facing component: a token it signs with "mesh"
counts only on the few credential checks it makes as itself, never on audit
appends, matching, embedding or kyc-tier's exports (the probe's F4). A client
certificate without a SPIFFE name counts for no token (F6).
"""

from __future__ import annotations

import ast
import datetime
import importlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from identity_runtime import descriptors, mesh, meshtls
from identity_runtime.authz import CallerAuthInterceptor, allowed_issuers, method_policies
from identity_runtime.errors import PermissionDenied, Unauthenticated
from identity_runtime.meshauth import TokenVerifier, TrustedKeys
from tests.support.meshauth import SIGNERS, caller_metadata, trusted_keys_json

GATEWAY_DIR = Path(__file__).resolve().parents[2] / "gateway"

APPEND = mesh.AUDIT_APPEND
APPEND_BATCH = mesh.AUDIT_APPEND_BATCH
LIST_ENROLLMENTS = "/identity.matching.v1.MatchingService/ListEnrollments"
EMBED = "/identity.embedding.v1.EmbeddingService/Embed"
ASSESS_FACE = "/identity.capture_quality.v1.CaptureQualityService/AssessFace"
CHECK_LIVENESS = "/identity.liveness.v1.LivenessService/CheckLiveness"
VERIFY_CHAIN = "/identity.audit.v1.AuditService/VerifyChain"
EXPORT_CUSTOMERS = "/identity.kyc_tier.v1.DashboardService/ExportCustomersCsv"
EXPORT_VERIFICATIONS = "/identity.kyc_tier.v1.DashboardService/ExportVerificationsCsv"
PUT_OBJECT = "/identity.face_match.v1.SubmissionService/PutObject"
QUERY_ENTRIES = "/identity.audit.v1.AuditService/QueryEntries"


def interceptor(service: mesh.MeshService) -> CallerAuthInterceptor:
    verifier = TokenVerifier(TrustedKeys.from_json(trusted_keys_json()))
    return CallerAuthInterceptor(service.name, verifier, packages=[service.package])


def as_itself(issuer: str) -> list[tuple[str, str]]:
    """A token `issuer` mints when calling as itself (what a leaked key can mint too)."""
    return caller_metadata("org_victim", scopes=("mesh",), actor=f"service:{issuer}", issuer=issuer)


def service_of(rpc: str) -> mesh.MeshService:
    return mesh.BY_PACKAGE[descriptors.service_package(rpc.split("/")[1])]


async def authenticate(rpc: str, issuer: str, metadata: list[tuple[str, str]] | None = None):
    return await interceptor(service_of(rpc)).authenticate(
        rpc, metadata or as_itself(issuer), peer=issuer
    )


@pytest.mark.parametrize(
    "rpc",
    [
        APPEND,
        APPEND_BATCH,
        VERIFY_CHAIN,
        LIST_ENROLLMENTS,
        EMBED,
        ASSESS_FACE,
        CHECK_LIVENESS,
        EXPORT_CUSTOMERS,
        EXPORT_VERIFICATIONS,
    ],
)
async def test_the_gateways_mesh_token_opens_no_mesh_rpc_it_does_not_call_as_itself(rpc) -> None:
    with pytest.raises(PermissionDenied) as refused:
        await authenticate(rpc, "gateway")
    assert refused.value.reason == "CALLER_NOT_ALLOWED"
    assert refused.value.metadata == {"issuer": "gateway"}
    # Every scope at once changes nothing: "mesh" is what a mesh-only RPC asks for.
    every_scope = caller_metadata(
        "org_victim", scopes=("public", "internal", "mesh"), issuer="gateway"
    )
    with pytest.raises(PermissionDenied):
        await authenticate(rpc, "gateway", every_scope)


@pytest.mark.parametrize("rpc", sorted(mesh.MESH_RPCS[mesh.GATEWAY]))
async def test_the_gateways_mesh_token_still_opens_its_credential_checks(rpc) -> None:
    caller = await authenticate(rpc, "gateway")
    assert (caller.issuer, caller.scopes) == ("gateway", ("mesh",))


async def test_a_partner_token_from_the_gateway_still_opens_the_routed_rpcs() -> None:
    partner = caller_metadata("org_a", scopes=("internal",), issuer="gateway")
    caller = await authenticate(QUERY_ENTRIES, "gateway", partner)
    assert (caller.org_id, caller.scopes) == ("org_a", ("internal",))


KYC_TIER_CALLS = [APPEND, APPEND_BATCH, VERIFY_CHAIN, LIST_ENROLLMENTS, EMBED, ASSESS_FACE]


@pytest.mark.parametrize("rpc", [*KYC_TIER_CALLS, CHECK_LIVENESS])
async def test_kyc_tier_still_calls_every_mesh_rpc_of_the_services_it_calls(rpc) -> None:
    caller = await authenticate(rpc, "kyc-tier")
    assert caller.issuer == "kyc-tier"


async def test_face_match_appends_to_audit_and_does_nothing_else_there() -> None:
    for rpc in (APPEND, APPEND_BATCH):
        assert (await authenticate(rpc, "face-match")).issuer == "face-match"
    with pytest.raises(PermissionDenied) as refused:
        await authenticate(VERIFY_CHAIN, "face-match")
    assert refused.value.reason == "CALLER_NOT_ALLOWED"


async def test_kyc_tier_still_may_not_call_kyc_tier() -> None:
    with pytest.raises(PermissionDenied) as refused:
        await authenticate(EXPORT_CUSTOMERS, "kyc-tier")
    assert refused.value.reason == "CALLER_NOT_ALLOWED"


def test_an_issuer_nobody_declared_calls_nothing_as_itself() -> None:
    assert not mesh.may_call_as_itself("batch-job", APPEND)
    assert not mesh.may_call_as_itself("audit", APPEND)  # calls no one


# --- the declaration cannot drift from the gateway's code --------------------------


def _resolve(node: ast.expr, module: object) -> str:
    if isinstance(node, ast.Name):
        return str(getattr(module, node.id))
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return str(getattr(getattr(module, node.value.id), node.attr))
    raise AssertionError(f"{ast.unparse(node)}: name the RPC with a module constant")


def gateway_calls_as_itself() -> set[str]:
    """Every RPC the gateway's code passes to `_as_gateway` (the only place it binds "mesh")."""
    found: set[str] = set()
    for path in sorted(GATEWAY_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        module = importlib.import_module(f"gateway.{path.stem}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "_as_gateway"
            ):
                found.add("/" + _resolve(node.args[0], module).lstrip("/"))
    return found


def test_the_gateways_declared_mesh_rpcs_are_what_its_code_calls_as_itself() -> None:
    called = gateway_calls_as_itself()
    assert len(called) >= 6, called
    mesh_only = {rpc for rpc in called if method_policies()[rpc].scope == "mesh"}
    assert mesh_only == mesh.MESH_RPCS[mesh.GATEWAY]


def test_the_gateway_binds_the_mesh_scope_in_one_place_only() -> None:
    binders = [
        path.name
        for path in GATEWAY_DIR.glob("*.py")
        for line in path.read_text().splitlines()
        if "MESH_SCOPE" in line or '"mesh"' in line
    ]
    assert binders == ["app.py"], binders


def test_every_declared_rpc_is_a_mesh_only_rpc_of_a_service_the_caller_calls() -> None:
    policies = method_policies()
    for issuer, rpcs in mesh.MESH_RPCS.items():
        callees = mesh.GATEWAY_CALLS if issuer == mesh.GATEWAY else mesh.BY_NAME[issuer].calls
        for rpc in rpcs:
            assert policies[rpc].scope == "mesh", rpc
            assert service_of(rpc).name in callees, (issuer, rpc)


# --- a mesh-only RPC nobody calls is deprecated --------------------------------------


def callers_as_themselves(rpc: str) -> set[str]:
    """The issuers whose own token opens the mesh-only `rpc`: those its service
    admits (`allowed_issuers`) and `mesh.MESH_RPCS` lets call it as themselves."""
    admitted = allowed_issuers(service_of(rpc).name)
    return {issuer for issuer in admitted if mesh.may_call_as_itself(issuer, rpc)}


def test_a_mesh_only_rpc_is_deprecated_exactly_when_no_caller_may_call_it() -> None:
    """A mesh-only RPC has no route, so a partner never reaches it: with no
    issuer declared to call it either, it is dead, kept in the contract for
    wire compatibility only and marked deprecated there (kyc-tier's unary CSV
    exports). One a caller relies on is not deprecated."""
    policies = method_policies()
    dead = set()
    for rpc, method in descriptors.methods():
        if policies[rpc].scope != "mesh":
            continue
        callers = callers_as_themselves(rpc)
        assert method.GetOptions().deprecated is not bool(callers), (rpc, sorted(callers))
        if not callers:
            dead.add(rpc)
    assert dead == {EXPORT_CUSTOMERS, EXPORT_VERIFICATIONS}


@pytest.mark.parametrize("rpc", [EXPORT_CUSTOMERS, EXPORT_VERIFICATIONS])
async def test_the_deprecated_exports_open_to_no_caller(rpc: str) -> None:
    # Every issuer the mesh trusts (the gateway and the services that call others).
    for issuer in SIGNERS:
        with pytest.raises(PermissionDenied) as refused:
            await authenticate(rpc, issuer)
        assert refused.value.reason == "CALLER_NOT_ALLOWED", issuer
    # A partner's scopes, forwarded by the gateway: the RPC asks for "mesh".
    partner = caller_metadata("org_a", scopes=("public", "internal"), issuer="gateway")
    with pytest.raises(PermissionDenied) as scoped:
        await authenticate(rpc, "gateway", partner)
    assert scoped.value.reason == "SCOPE_INSUFFICIENT"
    # No route, so no API key; and no credentials at all.
    for metadata in ([("x-api-key", "idk_partner")], [("x-request-id", "req_1")]):
        with pytest.raises(Unauthenticated):
            await interceptor(mesh.KYC_TIER).authenticate(rpc, metadata, peer=None)


# --- a certificate without a SPIFFE name (F6) --------------------------------------


def certificate(san: x509.SubjectAlternativeName | None) -> bytes:
    ca_pem, ca_key_pem = meshtls.new_ca("test CA")
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")]))
        .issuer_name(ca.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_a_certificate_without_a_spiffe_name_names_no_workload() -> None:
    assert meshtls.peer_service({}) is None  # plaintext
    no_san = certificate(None)
    dns_only = certificate(x509.SubjectAlternativeName([x509.DNSName("gateway")]))
    spiffe = certificate(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(meshtls.spiffe_id("gateway"))])
    )
    assert meshtls.peer_service({"x509_pem_cert": [no_san]}) == ""
    assert meshtls.peer_service({"x509_pem_cert": [dns_only]}) == ""
    assert meshtls.peer_service({"x509_pem_cert": [spiffe]}) == "gateway"


async def test_a_token_from_a_certificate_without_a_spiffe_name_is_refused() -> None:
    kyc_tier = interceptor(mesh.KYC_TIER)
    partner = caller_metadata("org_a", scopes=("public",), issuer="gateway")
    rpc = "/identity.kyc_tier.v1.CustomerService/GetCustomer"
    with pytest.raises(Unauthenticated) as refused:
        await kyc_tier.authenticate(rpc, partner, peer="")
    assert refused.value.reason == "CALLER_UNAUTHENTICATED"
    assert (await kyc_tier.authenticate(rpc, partner, peer="gateway")).org_id == "org_a"
    assert (await kyc_tier.authenticate(rpc, partner, peer=None)).org_id == "org_a"
