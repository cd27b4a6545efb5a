"""Errors raised by the storage layer, each with a message meant for the operator."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every storage problem."""


class DatabaseCorrupt(StorageError):
    """The SQLite file failed its integrity check (or is not a database at all)."""


class SchemaTooNew(StorageError):
    """The file was written by a newer SurgeDCA: this build must not touch it."""


class MigrationFailed(StorageError):
    """A schema migration failed; it was rolled back and the file is unchanged."""


class AlreadyRunning(StorageError):
    """Another process holds the database's instance lock."""


class DuplicateClientOrderId(StorageError):
    """The orders journal already holds this client order id (order-safety rule 1)."""


class DuplicateFill(StorageError):
    """This fill was already recorded: applying it twice would double a position."""


class DuplicateFunding(StorageError):
    """This funding payment (its exchange id) was already recorded."""


class ActivePositionExists(StorageError):
    """The symbol already has a pending or open position."""


class PositionNotFound(StorageError, LookupError):
    """No position row has this id."""


class PositionStateError(StorageError):
    """The requested change does not fit the position's status (e.g. closing a closed position)."""


class UnknownOrder(StorageError, LookupError):
    """No orders-journal row has this client order id."""


class InvalidTransition(StorageError):
    """A status change the transition table does not allow (a bug, never an exchange answer)."""
