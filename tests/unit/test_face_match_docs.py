"""docs/face-match.md spells the API's enum values as the contract (and so the
OpenAPI document) names them (probe3 finding 11: it named `KTP`, `PASSPORT`,
which the REST API refuses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.openapi import build_document
from gateway.routing import RouteTable, build_routes
from identity_platform_api.face_match.v1 import submissions_pb2
from identity_runtime import mesh

pytestmark = pytest.mark.unit

DOC = (Path(__file__).resolve().parents[2] / "docs" / "face-match.md").read_text()


def test_every_reference_type_is_documented_as_the_openapi_document_names_it() -> None:
    document = build_document(RouteTable(build_routes(), mesh.BY_PACKAGE))
    schema = document["components"]["schemas"]["ReferenceType"]
    names = [name for name in schema["enum"] if not name.endswith("_UNSPECIFIED")]
    assert names == [
        n for n in submissions_pb2.ReferenceType.keys() if n != "REFERENCE_TYPE_UNSPECIFIED"
    ]
    for name in names:
        assert f"`{name}`" in DOC, name
    # The short names are named only as what the REST API does not take.
    assert "`KTP`" in DOC and "the REST API does not take them" in DOC
