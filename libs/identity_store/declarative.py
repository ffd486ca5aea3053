"""What every service's declarative base shares: constraint names and column types.

Each service declares its own tables on its own `MetaData` (services/<svc>/models.py):

    class Base(DeclarativeBase):
        metadata = owned_metadata()
        type_annotation_map = TYPE_ANNOTATION_MAP
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, String

from identity_store.types import JsonDocument, UTCDateTime

# Deterministic constraint names, so migrations are portable and reviewable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TYPE_ANNOTATION_MAP: dict[Any, Any] = {
    datetime: UTCDateTime(),
    dict[str, Any]: JsonDocument,
    list[Any]: JsonDocument,
}

# Identifiers ("cus_...", "org_...", "dk_..."), at most ID_LENGTH characters.
ID_LENGTH = 40
ID = String(ID_LENGTH)


def owned_metadata() -> MetaData:
    """A fresh MetaData for one owner's tables, with the shared naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)
