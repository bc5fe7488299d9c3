"""Errors of the storage layer.

Exception tree::

    StorageError                 the database could not do what was asked
    ├── DatabaseUnavailable      it could not be reached or started
    ├── DuplicateKey             a unique key already exists
    └── ImportRejected           a directory import file is invalid (nothing written)

``DriverError`` is the driver's own root (``pymongo.errors.PyMongoError``),
re-exported so that ``server/`` can map a failed operation without importing
the driver. ``server/`` maps ``DatabaseUnavailable`` and ``DriverError`` to
503 / ``store_unavailable`` and never shows the driver's message to a client.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.errors import PyMongoError as DriverError

__all__ = [
    "DatabaseUnavailable",
    "DriverError",
    "DuplicateKey",
    "ImportRejected",
    "RowProblem",
    "StorageError",
]


class StorageError(Exception):
    """Root of every error raised by ``storage/``."""


class DatabaseUnavailable(StorageError):
    """The database did not answer, or the embedded one failed to start."""


class DuplicateKey(StorageError):
    """A document with the same unique key already exists."""


@dataclass(frozen=True)
class RowProblem:
    """One reason why a row of an import file was refused."""

    line: int
    reason: str


class ImportRejected(StorageError):
    """A directory import was refused as a whole; ``problems`` says why, by line."""

    def __init__(self, source: str, problems: list[RowProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "; ".join(f"{source}:{p.line}: {p.reason}" for p in problems[:20])
        more = f" (+{len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"import refused, nothing written: {lines}{more}")
