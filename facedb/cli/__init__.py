"""The `facedb` command: one module per command group, each with a `register(subparsers)`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from facedb import __version__
from facedb.cli import admin, analysis, client, enroll, eval, identities, models, server, vision
from facedb.cli.errors import EXIT_CODES_HELP, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, describe

COMMAND_GROUPS = (server, client, enroll, identities, vision, analysis, models, admin, eval)

DESCRIPTION = (
    "facedb: a face-search database. Enroll people from photos, then ask who is in a photo "
    "(identify, 1:N) or whether two faces are the same person (verify, 1:1). `facedb serve` "
    "runs the gRPC service; the client commands (gallery, enroll, identify, verify, identity, "
    "face, stats) talk to it; detect, compare, analyze, cluster, models, migrate, reindex and "
    "calibrate work locally without a server. `facedb COMMAND --help` describes each command."
)


class Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line (with the command's name), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="facedb",
        description=DESCRIPTION,
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--version", action="version", version=f"facedb {__version__}", help="print the version"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage mistake (already printed)
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are noise here
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(f"facedb {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the safety net: a mistake is one line, not a traceback
        return _report(args, error)


def _report(args: argparse.Namespace, error: Exception) -> int:
    if args.verbose:
        logging.getLogger("facedb").exception("%s failed", args.command)
    known = describe(error)
    if known is None:
        print(
            f"facedb {args.command}: internal error: {type(error).__name__}: {_first_line(error)} "
            "(a bug in facedb; --verbose shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    message, code = known
    print(f"facedb {args.command}: {message}", file=sys.stderr)
    return code


def _first_line(error: Exception) -> str:
    return next(iter(str(error).strip().splitlines()), "")


if __name__ == "__main__":
    sys.exit(main())
