"""Storage adapters: SQLAlchemy 2 async engines, tables, repositories, CLI helpers."""

from .bindings import SqlBindingRepository
from .cli import (
    StorageError,
    database_url,
    db_current,
    db_downgrade,
    db_upgrade,
    list_registrations,
    read_registrations,
)
from .engine import create_engine

__all__ = [
    "SqlBindingRepository", "StorageError", "create_engine", "database_url", "db_current",
    "db_downgrade", "db_upgrade", "list_registrations", "read_registrations",
]
