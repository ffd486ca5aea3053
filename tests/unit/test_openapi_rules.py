"""The OpenAPI document states the validation layer's rules where only
requests use a schema: every string of a request-only message and every
string query or path parameter has the layer's maxLength and no-control-
characters pattern; page sizes their bounds; response schemas stay plain."""

from __future__ import annotations

import re

from gateway.openapi import build_document
from gateway.routing import RouteTable, build_routes
from identity_runtime import mesh
from identity_runtime.validation import MAX_PAGE_SIZE

DOCUMENT = build_document(RouteTable(build_routes(), mesh.BY_PACKAGE))
SCHEMAS = DOCUMENT["components"]["schemas"]


def test_request_strings_carry_the_rules_and_the_pattern_means_them() -> None:
    create = SCHEMAS["CreateCustomerRequest"]["properties"]
    # The layer allows 256 for a name; the contract declares 200 for this one.
    assert create["fullName"]["maxLength"] == 200
    assert create["externalId"]["maxLength"] == 128
    pattern = re.compile(create["fullName"]["pattern"])
    assert pattern.fullmatch("Siti Rahayu é")
    assert not pattern.fullmatch("Siti\x00") and not pattern.fullmatch("a\nb")
    # Nothing invisible in an id; a name takes only the zero-width (non-)joiner.
    external_id = re.compile(create["externalId"]["pattern"])
    assert external_id.fullmatch("user-42")
    for invisible in ("\u200b", "\u202e", "\u200d", "\ufeff", "\u2028"):
        assert not external_id.fullmatch(f"user-42{invisible}")
    assert not pattern.fullmatch("Siti\u202eRahayu") and not pattern.fullmatch("Siti\u200b")
    assert pattern.fullmatch("\u0915\u094d\u200d\u0937")
    note = SCHEMAS["CreateWebhookRequest"]["properties"]["description"]
    assert re.compile(note["pattern"]).fullmatch("line one\r\nline two")
    assert not re.compile(note["pattern"]).fullmatch("bell\x07")


def test_every_string_parameter_and_page_size_is_bounded() -> None:
    checked = 0
    for operations in DOCUMENT["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if schema.get("type") == "string" and "format" not in schema:
                    assert "maxLength" in schema and "pattern" in schema, parameter
                    checked += 1
                if parameter.get("name") == "pageSize":
                    assert (schema["minimum"], schema["maximum"]) == (0, MAX_PAGE_SIZE)
    assert checked > 15


def test_response_schemas_are_not_constrained() -> None:
    customer = SCHEMAS["Customer"]["properties"]
    assert all("maxLength" not in field for field in customer.values())


def test_declared_field_rules_examples_and_short_names() -> None:
    from gateway.openapi_names import short_names

    step_up = SCHEMAS["StepUpRequest"]
    assert step_up["required"] == ["customerId", "challengeId", "bundle"]
    assert step_up["x-proto-name"] == "identity.kyc_tier.v1.StepUpRequest"
    nonce = SCHEMAS["BundleAttestation"]["properties"]["nonce"]
    assert (nonce["minLength"], nonce["maxLength"]) == (8, 128)
    assert SCHEMAS["CaptureBundle"]["properties"]["frames"]["minItems"] == 1
    create = SCHEMAS["CreateCustomerRequest"]
    assert create["required"] == ["externalId"]
    assert create["properties"]["nik"]["pattern"] == "^[0-9]{16}$"
    assert create["properties"]["email"]["format"] == "email"
    body = DOCUMENT["paths"]["/api/customers"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["example"]["externalId"] == "partner-user-8812"
    image = SCHEMAS["Image"]["properties"]["data"]
    assert image["format"] == "byte" and image["contentEncoding"] == "base64"
    # Response-only messages: what the gateway always writes is required.
    assert {"customerId", "tier", "legalHold"} <= set(SCHEMAS["Customer"]["required"])
    # A clash across packages qualifies both; a name in use is never taken.
    assert short_names(
        ["identity.kyc_tier.v1.RegisterDeviceRequest", "identity.liveness.v1.RegisterDeviceRequest"]
    ) == {
        "identity.kyc_tier.v1.RegisterDeviceRequest": "KycTierRegisterDeviceRequest",
        "identity.liveness.v1.RegisterDeviceRequest": "LivenessRegisterDeviceRequest",
    }
    assert short_names(["identity.x.v1.Error"], frozenset({"Error"})) == {
        "identity.x.v1.Error": "XError"
    }
    assert all("." not in name for name in SCHEMAS)
