"""The scrubbing at the logging root: free text loses NIKs, emails, phone
numbers, API keys and base64 blobs, in structlog events, in stdlib records
(SQLAlchemy, gRPC, uvicorn) and in formatted exceptions; log files of
`identity up` are private."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import stat
import time
from pathlib import Path

import pytest

from identity_cli.up import open_private_log
from identity_runtime import context, logs

NIK = "3273024107950003"
EMAIL = "siti.rahayu@example.co.id"
KEY = "idk_ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
BLOB = base64.b64encode(bytes(range(256)) * 2).decode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"nik {NIK} checked", "nik <nik> checked"),
        (f"mail {EMAIL}.", "mail <email>."),
        ("call +62 812-3456-7890 now", "call <phone> now"),
        ("call 081234567890 now", "call <phone> now"),
        ("call 6281234567890", "call <phone>"),
        (f"Authorization: Bearer {KEY}", "Authorization: Bearer <api-key>"),
        ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer <redacted>"),
        (f"key={KEY}", "key=<api-key>"),
        (f"data={BLOB}", "data=<base64>"),
        # Grouped NIKs and dotted phone numbers (a black-box probe's request ids).
        ("nik 3273-0241-0795-0003 given", "nik <nik> given"),
        ("nik 3273 0241 0795 0003", "nik <nik>"),
        ("ref 327302.4107950003", "ref <nik>"),
        ("call 0812.3456.7890", "call <phone>"),
        ("Siti-Rahayu.6281234567890", "Siti-Rahayu.<phone>"),
        # Underscores part groups too (probe 4's re-probe: a reason code).
        ("ref 3273_0241_0795_0003", "ref <nik>"),
        ("call 0812_3456_7890", "call <phone>"),
        (f"url-safe {BLOB.replace('+', '-').replace('/', '_')}", "url-safe <base64>"),
    ],
)
def test_scrub_text_masks_what_free_text_may_carry(text: str, expected: str) -> None:
    assert logs.scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "live score 0.8123456789 below 0.91",
        "score 0.81234567890 and 0 8 only",
        "sha256 " + "ab" * 32,
        "request req_0123456789abcdef0123 org org_60f1edddece2495fa1080278ca5c438b",
        "2026-11-26T06:18:35Z sequence 1234567 took 812.5 ms",
        "NIK_MISMATCH_SUBMITTED on frames[3].data",
    ],
)
def test_scrub_text_leaves_operational_text_alone(text: str) -> None:
    assert logs.scrub_text(text) == text


def test_structlog_events_are_scrubbed_in_every_value_and_in_exceptions() -> None:
    try:
        raise ValueError(f"duplicate key ({NIK}, {EMAIL})")
    except ValueError as exc:
        event = {
            "event": f"failed for {EMAIL}",
            "details": {"email": EMAIL, "note": f"nik {NIK}", "count": 2},
            "items": [KEY, 3],
            "exception": f"Traceback ...\nValueError: {exc}",
            "payload": b"\x89PNG...",
        }
    scrubbed = logs.scrub_personal_data(None, "error", event)
    text = repr(scrubbed)
    for secret in (NIK, EMAIL, KEY):
        assert secret not in text
    assert scrubbed["details"]["count"] == 2 and scrubbed["items"][1] == 3
    assert scrubbed["payload"] == "<7 bytes>"


def test_generated_hex_ids_keep_their_digits_but_nothing_else_hides_behind_the_name() -> None:
    """A request id may hold 16 digits in a row; masking them would break
    correlation. Only a hex id is kept as is: a NIK under that name is not."""
    request_id = "5fe273a4ea" + "5432102998877665" + "a71c"
    event = {"request_id": request_id, "trace_id": f"nik {NIK}", "note": request_id}
    scrubbed = logs.scrub_personal_data(None, "info", event)
    assert scrubbed["request_id"] == request_id
    assert NIK not in scrubbed["trace_id"]
    assert scrubbed["note"] != request_id


def test_the_root_handler_scrubs_stdlib_records_and_their_tracebacks() -> None:
    filter_ = logs.ScrubbingFilter()
    try:
        raise RuntimeError(f"(psycopg.errors.UniqueViolation) Key (nik)=({NIK}) already exists")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "sqlalchemy.engine",
            logging.ERROR,
            __file__,
            1,
            "params %s %s",
            (EMAIL, KEY),
            sys.exc_info(),
        )
    assert filter_.filter(record)
    rendered = logging.Formatter().format(record)
    for secret in (NIK, EMAIL, KEY):
        assert secret not in rendered
    assert "UniqueViolation" in rendered and "<nik>" in rendered


def test_configure_puts_the_filter_on_the_root_handler() -> None:
    logs.configure("test", "INFO", "json")
    # Only the process's own handler: pytest adds its capture handlers to the
    # root logger around each test, and configure() runs once per process.
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs._CurrentStderrHandler)]
    assert len(ours) == 1
    assert any(isinstance(f, logs.ScrubbingFilter) for f in ours[0].filters)


def test_identity_up_log_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "kyc-tier.log"
    path.write_text("from an earlier run\n")
    path.chmod(0o644)
    with open_private_log(path) as log_file:
        log_file.write(b"line\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == "from an earlier run\nline\n"
    fresh = tmp_path / "audit.log"
    with open_private_log(fresh):
        pass
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o600


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_the_hot_access_line_is_the_json_pipelines_line(capsys) -> None:
    """`write_hot_line` skips structlog's generic chain, not what it writes:
    same keys and values (the time aside), same scrubbing of what a caller
    controls (the request id), same level threshold."""
    logs.configure("matching", "INFO", "json")
    fields = {"duration_ms": 0.61, "status": "INVALID_ARGUMENT", "reason": "INVALID_FIELD"}
    token = context.bind(
        context.CallContext(
            request_id=f"req {NIK} {EMAIL}",
            org_id="org_logs",
            actor="gateway",
            scopes=(),
            deadline=time.monotonic() + 5,
            method="/identity.matching.v1.Matching/Verify",
        )
    )
    try:
        capsys.readouterr()
        logs.get_logger("identity.rpc").warning("rpc", **fields)
        logs.write_hot_line("warning", "rpc", dict(fields))
        logs.write_hot_line("info", "rpc", dict(fields, status="OK"))
        logs.configure("matching", "WARNING", "json")
        logs.write_hot_line("info", "rpc", dict(fields, status="OK"))
        text = capsys.readouterr().err
    finally:
        context.reset(token)
        logs.configure("test", "INFO", "json")
    general, hot, ok = _json_lines(text)  # the info line under WARNING is not written
    for line in (general, hot, ok):
        assert line.pop("timestamp").endswith("Z")
    assert hot == general
    assert list(hot) == list(general)
    assert hot["request_id"] == "req <nik> <email>"
    assert (hot["service"], hot["org_id"], hot["level"]) == ("matching", "org_logs", "warning")
    assert (ok["level"], ok["status"]) == ("info", "OK")
    assert NIK not in text and EMAIL not in text


def test_http_clients_do_not_log_request_urls(capsys) -> None:
    """httpx logs each request's URL at INFO; a partner's callback URL may
    carry a token in its query. Warnings and errors still get through."""
    logs.configure("face-match", "INFO", "json")
    capsys.readouterr()
    url = "https://partner.example/callback?token=cb-s3cr3t&customer=cus_42"
    logging.getLogger("httpx").info('HTTP Request: POST %s "HTTP/1.1 200 OK"', url)
    logging.getLogger("httpcore.connection").info("connect_tcp.started host=%s", url)
    logging.getLogger("httpx").warning("gave up on a callback")
    text = capsys.readouterr().err
    assert "cb-s3cr3t" not in text
    assert "gave up on a callback" in text


def test_a_nik_as_request_id_is_masked_though_it_is_hex() -> None:
    # "3273024107950003" fits the hex-id shape; a client chose it, the platform did not.
    scrubbed = logs.scrub_personal_data(None, "info", {"request_id": NIK})
    assert scrubbed["request_id"] == "<nik>"


def assert_request_ids(replaced: tuple[str, ...], kept: tuple[str, ...]) -> None:
    """Each of `replaced` gets a new id from the gateway; each of `kept` is taken."""
    from gateway.app import request_id_from

    for personal in replaced:
        new = request_id_from(personal)
        assert new != personal and re.fullmatch(r"[0-9a-f]{32}", new)
    for sane in kept:
        assert request_id_from(sane) == sane


def test_the_gateway_replaces_a_request_id_holding_personal_data() -> None:
    # A client's id is logged by every service as is (the hex-id exemption),
    # so even a NIK inside hex ("...ea" NIK "a7...") is not taken.
    assert_request_ids(
        replaced=(
            NIK,
            f"req-{NIK}",
            f"ea{NIK}a7",
            "req-081234567890",
            "idk_ABCDEFGH1234",
            "Siti-Rahayu.6281234567890",
            "0812.3456.7890",
            "3273-0241-0795-0003",
            "327302.4107950003",
        ),
        kept=(
            "partner-req.42:a_b-c",
            "5fe273a4ea54321a71c",
            "req-42",
            "550e8400-e29b-41d4-a716-446655440000",
        ),
    )


def test_the_gateway_replaces_a_request_id_holding_a_run_of_digits() -> None:
    # The scrubbers skip digits joined to a letter or "_" (hex ids stay
    # readable); a client's id is held to more: no run of 9 digits, single
    # separators allowed. A date with a counter has that shape too, and is
    # replaced: it cannot be told from a phone number written in groups.
    assert_request_ids(
        replaced=(
            "3273_0241_0795_0003",
            "Siti_Rahayu_081234567890",
            "Siti_081234567890",
            "a6281234567890",
            "batch-2026-11-27.0042",
        ),
        kept=(),
    )
    # A UUID, with dashes or as the platform's own 32 hex digits, may hold a
    # run of digits by chance: only the scrubbers judge it, so one whose
    # first groups spell 16 digits (a grouped NIK's shape) is replaced.
    assert_request_ids(
        replaced=(
            "32730241-0795-0003-a716-446655440000",
            "12345678-1234-1234-1234-123456789012",
        ),
        kept=(
            "550e8400-e29b-41d4-a716-446655440000",
            "5fe273a4ea54321a71c4b1234567890e",
            "partner-req.42:a_b-c",
            "req-42",
            "req-12345678",
        ),
    )
