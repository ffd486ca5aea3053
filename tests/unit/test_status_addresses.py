"""`scrub_addresses`: network addresses masked, field paths with indexes kept."""

from __future__ import annotations

import pytest

from identity_runtime.status import scrub_addresses


@pytest.mark.parametrize(
    "text",
    [
        "frames[0].data: not a decodable image",
        "bundle.frames[12].image: wider than 4096 pixels",
        "values[3]: must be finite",
        "items[0][1]: out of range",
        "metadata[ab]: unknown key",
    ],
)
def test_field_paths_with_indexes_survive(text: str) -> None:
    assert scrub_addresses(text) == text


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("peer [::1]:50064 went away", "peer <address> went away"),
        ("peer [fd00::7] went away", "peer <address> went away"),
        ("peer [2001:db8:0:0:0:0:0:1]:443 went away", "peer <address> went away"),
        ("peer [::ffff:10.0.0.7]:443 went away", "peer <address> went away"),
        ("ipv6:[::1]:50064: refused", "<address> refused"),
        ("frames[0]: from [fe80::1]", "frames[0]: from <address>"),
    ],
)
def test_ipv6_literals_are_still_masked(text: str, scrubbed: str) -> None:
    assert scrub_addresses(text) == scrubbed
