"""The `identity` command's user errors: one line on stderr, exit status 2, no
traceback, and no database or data directory created where nobody asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from identity_cli.schema import migrate_all

IDENTITY = str(Path(sys.executable).parent / "identity")
# Variables that would point the command at a database, a data dir or secrets.
CHOSEN = (
    "IDENTITY_",
    "KYC_TIER_",
    "MATCHING_",
    "AUDIT_",
    "LIVENESS_",
    "GATEWAY_",
    "FACE_MATCH_",
)


def identity(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CHOSEN)}
    return subprocess.run(
        [IDENTITY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    """A working directory outside any checkout, with nothing in it."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    return directory


# Stands for `secret_file` in parametrized commands.
SECRET = "<secret file>"


@pytest.fixture
def secret_file(tmp_path: Path) -> str:
    """A pepper or signing key in a file, outside `empty_dir`: a command reads
    a secret from a file, never from its command line."""
    path = tmp_path / "secret"
    path.write_text("p" * 32 + "\n")
    return str(path)


@pytest.fixture
def migrated(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    migrate_all(url)
    return url


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "status"],
        ["audit", "export"],
        ["audit", "checkpoint"],
        ["orgs", "create", "--name", "Acme"],
        ["api-keys", "create", "--org", "org_x", "--name", "k", "--pepper-file", SECRET],
        ["api-keys", "revoke", "key_x", "--org", "org_x"],
        ["customers", "legal-hold", "cus_x", "--org", "org_x", "--on"],
        ["oauth-clients", "create", "--org", "org_x", "--name", "k", "--pepper-file", SECRET],
        ["face-match", "rotate-callback-secret", "--org", "org_x", "--signing-key-file", SECRET],
        ["breach", "assess", "--incident", "INC-1"],
        ["breach", "revoke-templates", "--all", "--incident", "INC-1", "--dry-run"],
        ["pdp", "record-of-processing", "--org", "org_x"],
        ["retention", "sweep", "--service", "audit"],
    ],
)
def test_a_command_needing_a_database_creates_none(
    empty_dir: Path, secret_file: str, command: list[str]
) -> None:
    command = [secret_file if arg == SECRET else arg for arg in command]
    line = assert_user_error(identity(empty_dir, *command), "no database at")
    assert line.startswith(f"identity {command[0]} {command[1]}: ")
    assert "identity migrate" in line
    assert list(empty_dir.iterdir()) == []


def test_a_named_sqlite_file_that_is_not_there_is_not_created(empty_dir: Path) -> None:
    missing = empty_dir / "missing.db"
    result = identity(empty_dir, "keys", "status", "--database-url", f"sqlite:///{missing}")
    assert_user_error(result, f"no SQLite database at {missing}")
    assert not missing.exists()


def test_an_unreachable_database_is_one_line(empty_dir: Path) -> None:
    result = identity(
        empty_dir, "keys", "status", "--database-url", "postgresql://nobody@127.0.0.1:1/none"
    )
    assert_user_error(result, "identity keys status: cannot use the database: ")


def test_an_unmigrated_database_says_how_to_migrate(empty_dir: Path) -> None:
    (empty_dir / "empty.db").write_bytes(b"")
    result = identity(
        empty_dir, "keys", "status", "--database-url", f"sqlite:///{empty_dir / 'empty.db'}"
    )
    assert_user_error(result, "not migrated", "run `identity migrate`")


def test_a_malformed_database_url_is_one_line(empty_dir: Path) -> None:
    result = identity(empty_dir, "orgs", "create", "--name", "A", "--database-url", "nonsense")
    assert_user_error(result, "not a usable database URL")


def test_an_unknown_org_is_one_line(empty_dir: Path, migrated: str, secret_file: str) -> None:
    result = identity(
        empty_dir,
        *("api-keys", "create", "--org", "org_nope", "--name", "k", "--pepper-file", secret_file),
        *("--database-url", migrated),
    )
    assert_user_error(result, "identity api-keys create: org_id: unknown organisation")


def test_a_key_without_a_pepper_is_refused_not_invented(
    empty_dir: Path, migrated: str, secret_file: str
) -> None:
    created = identity(empty_dir, "orgs", "create", "--name", "Acme", "--database-url", migrated)
    assert created.returncode == 0, created.stderr
    org_id = created.stdout.strip()
    result = identity(
        empty_dir, "api-keys", "create", "--org", org_id, "--name", "k", "--database-url", migrated
    )
    assert_user_error(result, "no API-key pepper", "KYC_TIER_API_KEY_PEPPER")
    assert list(empty_dir.iterdir()) == []
    # With the pepper it works (the refusals above are not the only outcome).
    made = identity(
        empty_dir,
        *("api-keys", "create", "--org", org_id, "--name", "k", "--pepper-file", secret_file),
        *("--database-url", migrated),
    )
    assert made.returncode == 0 and made.stdout.startswith("idk_"), made.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["no-such-command"], "invalid choice"),
        (["keys"], "required"),
        (["keys", "rotate", "--batch-size", "many"], "invalid int value"),
        (["audit", "purge", "--before", "2020-13-01", "--yes"], "is not a date YYYY-MM-DD"),
        (["audit", "verify", "--anchor", "twelve"], "is not SEQ:HMAC"),
        (["customers", "legal-hold", "cus_x", "--org", "org_x"], "one of the arguments"),
    ],
)
def test_bad_arguments_are_one_line(empty_dir: Path, args: list[str], fragment: str) -> None:
    line = assert_user_error(identity(empty_dir, *args), fragment)
    assert "--help" in line


def test_missing_and_malformed_files_are_one_line(empty_dir: Path) -> None:
    keyring = empty_dir / "kek.json"
    assert_user_error(
        identity(empty_dir, "keys", "set-primary", "--keyring", str(keyring), "kek-1"),
        f"cannot read keyring file {keyring}",
    )
    assert identity(empty_dir, "keys", "add", "--keyring", str(keyring)).returncode == 0
    export = empty_dir / "export.jsonl"
    verify = ("audit", "verify", "--file", str(export), "--keyring", str(keyring))
    assert_user_error(identity(empty_dir, *verify), f"{export}: No such file or directory")
    export.write_text("not json\n")
    assert_user_error(identity(empty_dir, *verify), "is not an audit export")
    pairs = empty_dir / "pairs.csv"
    pairs.write_text("file_x,file_y,Decision\na.jpg,b.jpg,maybe\n")
    result = identity(
        empty_dir, "eval", "pairs", "--pairs", str(pairs), "--images", ".", "--out", "out"
    )
    assert_user_error(result, "a row without a Yes/No decision")
    assert not (empty_dir / "out").exists()


def test_a_missing_keyring_says_where_one_is_read_from(empty_dir: Path) -> None:
    export = empty_dir / "export.jsonl"
    export.write_text("")
    assert_user_error(
        identity(empty_dir, "audit", "verify", "--file", str(export)),
        "no audit HMAC keyring",
        "--keyring",
        "AUDIT_HMAC_KEYRING_FILE",
    )


def test_oauth_clients_by_cli(empty_dir: Path, migrated: str, secret_file: str) -> None:
    unknown = identity(
        empty_dir,
        *(
            "oauth-clients",
            "create",
            "--org",
            "org_nope",
            "--name",
            "b",
            "--pepper-file",
            secret_file,
        ),
        *("--database-url", migrated),
    )
    assert_user_error(unknown, "no organisation 'org_nope'")
    created = identity(empty_dir, "orgs", "create", "--name", "Acme", "--database-url", migrated)
    org_id = created.stdout.strip()
    no_pepper = identity(
        empty_dir,
        *("oauth-clients", "create", "--org", org_id, "--name", "b"),
        *("--database-url", migrated),
    )
    assert_user_error(no_pepper, "no OAuth client pepper", "FACE_MATCH_OAUTH_CLIENT_PEPPER")
    nameless = identity(
        empty_dir,
        *("oauth-clients", "create", "--org", org_id, "--name", "", "--pepper-file", secret_file),
        *("--database-url", migrated),
    )
    assert_user_error(nameless, "name must be 1 to 200 characters")
    made = identity(
        empty_dir,
        *("oauth-clients", "create", "--org", org_id, "--name", "b", "--pepper-file", secret_file),
        *("--database-url", migrated),
    )
    assert made.returncode == 0, made.stderr
    fields = dict(line.split("=", 1) for line in made.stdout.splitlines())
    assert fields["client_id"].startswith("fmci_") and fields["client_secret"].startswith("fmcs_")
    revoke = ("oauth-clients", "revoke", "--org", org_id, "--database-url", migrated)
    assert identity(empty_dir, *revoke, "--client-id", fields["client_id"]).returncode == 0
    assert_user_error(
        identity(empty_dir, *revoke, "--client-id", "fmci_nope"), "no OAuth client 'fmci_nope'"
    )
    # Both changes are queued for the audit chain, the operator's CLI as the
    # actor, never the secret; the refused revocation queued nothing.
    from identity_store.db import make_engine
    from services.face_match.models import AuditOutbox

    engine = make_engine(migrated)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    AuditOutbox.action, AuditOutbox.subject, AuditOutbox.actor, AuditOutbox.details
                ).order_by(AuditOutbox.id)
            ).all()
    finally:
        engine.dispose()
    subject = f"oauth_client:{fields['client_id']}"
    assert [tuple(row) for row in rows] == [
        ("oauth_client.create", subject, "system:identity-cli", {"scope": "public"}),
        ("oauth_client.revoke", subject, "system:identity-cli", {"scope": "public"}),
    ]


def test_an_organisation_id_the_services_would_refuse_is_refused(
    empty_dir: Path, migrated: str
) -> None:
    """Second black-box probe: `--id ../../etc` made an organisation whose every
    key was then refused (TENANT_MISSING)."""
    for bad in ("../../etc", "o" * 41, "org x"):
        result = identity(
            empty_dir, "orgs", "create", "--name", "Bad", "--id", bad, "--database-url", migrated
        )
        assert_user_error(result, "org_id: must be 1 to 40 letters, digits")
    made = identity(
        empty_dir, "orgs", "create", "--name", "Ok", "--id", "org_ok-1", "--database-url", migrated
    )
    assert (made.returncode, made.stdout.strip()) == (0, "org_ok-1"), made.stderr


def test_a_named_keyring_that_cannot_be_read_is_not_an_empty_one(
    empty_dir: Path, migrated: str
) -> None:
    missing = empty_dir / "nope.json"
    status = ("keys", "status", "--database-url", migrated)
    assert_user_error(
        identity(empty_dir, *status, "--keyring", str(missing)),
        f"cannot read keyring file {missing}",
    )
    assert identity(empty_dir, *status).returncode == 0  # none named: the usage alone


@pytest.mark.parametrize("size", ["0", "-1"])
def test_a_rotation_batch_is_one_key_or_more(empty_dir: Path, size: str) -> None:
    line = assert_user_error(
        identity(empty_dir, "keys", "rotate", "--batch-size", size), "is not 1 or more"
    )
    assert "--help" in line


@pytest.mark.parametrize("args", [["migrate", "--service", "nope"], ["migrate", "--revision", "x"]])
def test_a_refused_migrate_creates_nothing(empty_dir: Path, args: list[str]) -> None:
    """Second black-box probe: ./.identity/ was made before the refusal."""
    assert identity(empty_dir, *args).returncode == 2
    assert list(empty_dir.iterdir()) == []


def test_a_keyring_is_not_written_into_a_folder_that_is_not_there(empty_dir: Path) -> None:
    """Second black-box probe: `keys add` made every missing folder of the path."""
    keyring = empty_dir / "no" / "such" / "k.json"
    assert_user_error(
        identity(empty_dir, "keys", "add", "--keyring", str(keyring)),
        f"cannot write keyring file {keyring}: no folder",
    )
    assert list(empty_dir.iterdir()) == []


def test_a_revision_the_history_does_not_have_is_one_line_and_migrates_nothing(
    empty_dir: Path, tmp_path: Path
) -> None:
    """Black-box probe 7 (D9): alembic's traceback, exit status 1."""
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    result = identity(
        empty_dir, "migrate", "--service", "matching", "--revision", "bogus", "--database-url", url
    )
    assert_user_error(
        result, "identity migrate: --revision bogus:", "'bogus'", "matching history, whose head is"
    )
    assert sa.inspect(sa.create_engine(url)).get_table_names() == []
    assert list(empty_dir.iterdir()) == []
