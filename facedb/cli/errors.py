"""Exit codes of `facedb` and the one-line messages for the errors a user can cause.

A user mistake (a missing file, a bad model spec, a database that is not running, a call the
server refuses) is one line on stderr and exit code 2, never a traceback; `--verbose` adds
the traceback for whoever wants to dig.
"""

from __future__ import annotations

import grpc

# Exit codes a script can rely on (documented in `facedb --help` and the README).
EXIT_OK = 0  # done; identify found a match, verify said "same person"
EXIT_NO_MATCH = 1  # a valid negative answer: no match, different people, some items failed
EXIT_USAGE = 2  # a user mistake: bad flag, unreadable file, unknown model, refused request
EXIT_NO_FACE = 3  # no usable face in the image (none found, or every face refused)
EXIT_UNAVAILABLE = 4  # the server cannot be reached, is overloaded or timed out: retry later
EXIT_INTERNAL = 70  # a bug in facedb (EX_SOFTWARE); --verbose shows the traceback
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "exit codes: 0 ok (identify: a match; verify: same person), "
    "1 no match (verify: different people; enroll: some identities failed), "
    "2 usage or request error (bad flag, unreadable file, unknown model, request refused "
    "by the server, database not reachable), 3 no usable face in the image, 4 server "
    "unreachable, overloaded or too slow (retry later)"
)

# Status codes a retry may cure; every other refusal is the caller's to fix.
TRANSIENT_STATUSES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


class UserError(Exception):
    """A mistake the CLI found itself; the message says what and what to do."""


def rpc_error_message(error: grpc.RpcError, server: str | None = None) -> tuple[str, int]:
    """`CODE: details` (plus a hint where one helps) and the exit code for a failed call."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    message = f"{code.name}: {details}"
    if code is grpc.StatusCode.UNAVAILABLE and server:
        message += f" (is a facedb server running at {server}? set --server or FACEDB_SERVER)"
    elif code is grpc.StatusCode.UNAUTHENTICATED:
        message += " (set --api-key or FACEDB_API_KEY)"
    return message, EXIT_UNAVAILABLE if code in TRANSIENT_STATUSES else EXIT_USAGE


def describe(error: BaseException) -> tuple[str, int] | None:
    """One line and an exit code for an error a user can cause; None for anything else."""
    if isinstance(error, UserError):
        return str(error), EXIT_USAGE
    if isinstance(error, grpc.RpcError):
        return rpc_error_message(error)
    if isinstance(error, OSError):
        return _os_error(error), EXIT_USAGE
    database = _database_error(error)
    if database is not None:
        return database
    if isinstance(error, ValueError) or _raised_on_purpose(error):
        return _first_line(str(error)) or type(error).__name__, EXIT_USAGE
    return None


def _raised_on_purpose(error: BaseException) -> bool:
    """An error class of facedb's own (engine, storage, models, vision…): those are raised
    on purpose with a message for the user. Matched by module, so that moving a class to
    another module keeps it known."""
    return any(cls.__module__.split(".")[0] == "facedb" for cls in type(error).__mro__)


def _os_error(error: OSError) -> str:
    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return _first_line(str(error)) or type(error).__name__


def _database_error(error: BaseException) -> tuple[str, int] | None:
    import sqlalchemy.exc

    if isinstance(error, sqlalchemy.exc.ArgumentError):
        return f"bad database URL: {_first_line(str(error))}", EXIT_USAGE
    if isinstance(error, sqlalchemy.exc.OperationalError):
        reason = _first_line(str(error.orig or error))
        return (
            f"cannot use the database: {reason} (is the database server running? "
            "check --database-url or FACEDB_DATABASE_URL)",
            EXIT_USAGE,
        )
    if isinstance(error, sqlalchemy.exc.SQLAlchemyError):
        return f"database error: {_first_line(str(error))}", EXIT_USAGE
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""
