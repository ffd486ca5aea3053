"""The verify snippet of docs/webhooks.md, executed: it accepts what kyc-tier
signs (one secret, or two during a rotation) and refuses a forged, stale or
replayed delivery."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from identity_runtime import signing
from identity_store.types import utcnow
from services.kyc_tier import webhook_targets

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


@pytest.fixture(scope="module")
def verify_delivery() -> Any:
    [snippet] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)  # noqa: S102 - the documented code
    return namespace["verify_delivery"]


def test_the_snippet_verifies_single_and_rotation_signatures(verify_delivery) -> None:
    event_id, body = webhook_targets.event_document(
        "kyc.tier_changed", utcnow(), {"customer_id": "c"}
    )
    old, new = b"whsec_old", b"whsec_new"
    seen: set[str] = set()
    single = signing.signature_headers((old,), body)
    assert verify_delivery(old.decode(), body, single, seen)["id"] == event_id
    with pytest.raises(ValueError, match="replayed"):
        verify_delivery(old.decode(), body, single, seen)
    both = signing.signature_headers((new, old), body)
    for secret in (old, new):
        assert verify_delivery(secret.decode(), body, both, set())["id"] == event_id
    # Only the migration header present: still accepted.
    quantum = {"X-Quantum-Signature": both["X-Quantum-Signature"]}
    assert verify_delivery(new.decode(), body, quantum, set())
    with pytest.raises(ValueError, match="signature"):
        verify_delivery("whsec_other", body, both, set())
    with pytest.raises(ValueError, match="signature"):
        verify_delivery(old.decode(), body + b" ", single, set())


def test_the_snippet_refuses_a_stale_delivery(verify_delivery) -> None:
    _, body = webhook_targets.event_document("customer.erased", utcnow() - timedelta(minutes=6), {})
    with pytest.raises(ValueError, match="stale"):
        verify_delivery("s", body, signing.signature_headers((b"s",), body), set())
    assert json.loads(body)["type"] == "customer.erased"
