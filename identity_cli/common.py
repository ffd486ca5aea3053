"""Options shared by commands: where the data lives, which database."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from identity_store.db import default_sqlite_url

DEFAULT_DATA_DIR = Path(".identity")


def data_dir(args: argparse.Namespace) -> Path:
    chosen = (
        getattr(args, "data_dir", None) or os.environ.get("IDENTITY_DATA_DIR") or DEFAULT_DATA_DIR
    )
    return Path(chosen).expanduser().resolve()


def database_url(args: argparse.Namespace) -> str:
    """--database-url, else IDENTITY_DATABASE_URL, else the embedded SQLite file."""
    return (
        getattr(args, "database_url", None)
        or os.environ.get("IDENTITY_DATABASE_URL")
        or default_sqlite_url(data_dir(args))
    )


def add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: IDENTITY_DATABASE_URL, else SQLite in the data dir)",
    )
    parser.add_argument(
        "--data-dir",
        help="Directory of the embedded database and local secrets (default: ./.identity)",
    )
