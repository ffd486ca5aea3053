"""Schemathesis hooks for tests/e2e/test_schemathesis.py (SCHEMATHESIS_HOOKS).

`documented_reason`: an error answer's `reason` is one the operation lists
for that status (`x-identity-reasons`, from the errors its RPC declares:
gateway/openapi_errors.py). With `status_code_conformance` (every status
listed), this keeps each operation's documented errors true against the
live mesh."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def documented_reason(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code < 400:
        return None
    declared = case.operation.definition.raw.get("responses", {}).get(str(response.status_code))
    if not isinstance(declared, dict) or "x-identity-reasons" not in declared:
        return None  # an undocumented status is status_code_conformance's finding
    try:
        body = response.json()
        # The OAuth token route's errors (RFC 6749 section 5.2) name it beside `error`.
        reason = body["reason"] if isinstance(body["error"], str) else body["error"]["reason"]
    except (ValueError, KeyError, TypeError):
        return None  # not an Error body: the schema checks report it
    listed = declared["x-identity-reasons"]
    if reason not in listed:
        raise AssertionError(
            f"Undocumented reason {reason!r} for {response.status_code}; documented: {listed}"
        )
    return None
