"""`facedb enroll ROOT --gallery G`: one folder per identity, a report line per file.

Each identity is one Enroll call (two in flight), so the progress bar counts identities the
server has processed, and a failure that would repeat for every identity (gallery not
found, key refused, server gone) stops the run at once.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from tqdm import tqdm

from facedb.cli.client import add_json_option, connection_options, handled, print_json
from facedb.cli.errors import EXIT_NO_MATCH, EXIT_OK, UserError, rpc_error_message
from facedb.client import FaceDBClient, content_request_id, enroll_request
from facedb.v1 import facedb_pb2 as pb

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".avif", ".bmp"}
# Refusals that would be the same for every further identity: stop instead of repeating them.
FATAL_STATUSES = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAVAILABLE,
    }
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    enroll = subparsers.add_parser(
        "enroll",
        parents=[connection_options()],
        help="enroll a folder of identities",
        description="ROOT holds one folder per identity; the folder name is the external id. "
        "Prints one line per file (accepted, or refused and why) and a summary. Exit code 0: "
        "every identity went through (refused photos are listed), 1: some identities failed, "
        "2: the run stopped (e.g. no such gallery).",
    )
    enroll.add_argument("root", type=Path, help="folder of identity folders")
    enroll.add_argument("--gallery", required=True, help="gallery to enroll into")
    enroll.add_argument(
        "--allow-multiple-faces",
        action="store_true",
        help="take each photo's largest face instead of refusing photos with several",
    )
    enroll.add_argument(
        "--allow-duplicate",
        action="store_true",
        help="accept a face that matches another identity",
    )
    enroll.add_argument(
        "--in-flight", type=int, default=2, metavar="N", help="identities sent at a time"
    )
    add_json_option(enroll)
    enroll.set_defaults(handler=handled(run_enroll))


@dataclass
class FileReport:
    path: str
    external_id: str
    accepted: bool
    face_id: int | None = None
    reason: str | None = None  # a Reason name, or UNREADABLE (the CLI could not read it)
    message: str = ""


@dataclass
class IdentityReport:
    external_id: str
    created: bool = False
    error: str | None = None  # `CODE: message` when the whole identity failed
    files: list[FileReport] = field(default_factory=list)


@dataclass
class PreparedIdentity:
    external_id: str
    sent: list[Path]
    report: IdentityReport


def identity_folders(root: Path) -> list[tuple[str, list[Path]]]:
    """(external id, image files) for every sub-folder of `root` holding images."""
    if not root.is_dir():
        raise UserError(f"{root} is not a directory (expected one folder per identity)")
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            found.append((folder.name, images))
    return found


def _prepare(external_id: str, paths: list[Path]) -> tuple[PreparedIdentity, list[bytes]]:
    """The identity's readable files; unreadable ones are refused here, before sending."""
    report = IdentityReport(external_id)
    sent, images = [], []
    for path in paths:
        try:
            images.append(path.read_bytes())
            sent.append(path)
        except OSError as error:
            report.files.append(
                FileReport(str(path), external_id, False, None, "UNREADABLE", error.strerror or "")
            )
    return PreparedIdentity(external_id, sent, report), images


def _record(item: PreparedIdentity, result: pb.EnrollResponse | grpc.RpcError) -> None:
    report = item.report
    if isinstance(result, grpc.RpcError):
        code = result.code() if isinstance(result, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = result.details() if isinstance(result, grpc.Call) else str(result)
        report.error = f"{code.name}: {details}"  # the whole identity: no file was looked at
        return
    report.created = result.created
    for outcome in result.outcomes:
        file = str(item.sent[outcome.index])
        if outcome.accepted:
            report.files.append(FileReport(file, item.external_id, True, outcome.face_id))
        else:
            reason = pb.Reason.Name(outcome.rejection.reason)
            report.files.append(
                FileReport(file, item.external_id, False, None, reason, outcome.rejection.message)
            )


def run_enroll(client: FaceDBClient, args: argparse.Namespace) -> int:
    folders = identity_folders(args.root)
    with tqdm(total=len(folders), unit="identity", desc="enroll", file=sys.stderr) as bar:
        reports, stopped = _enroll_all(client, args, folders, bar)
    _print_report(reports, args.json)
    if stopped is not None:
        message, code = rpc_error_message(stopped, args.server)
        left = len(folders) - len(reports)
        print(f"facedb enroll: {message}; stopped, {left} identities not sent", file=sys.stderr)
        return code
    return EXIT_NO_MATCH if any(r.error for r in reports) else EXIT_OK


def _enroll_all(
    client: FaceDBClient,
    args: argparse.Namespace,
    folders: list[tuple[str, list[Path]]],
    bar: tqdm,
) -> tuple[list[IdentityReport], grpc.RpcError | None]:
    """Every identity's report, in the order processed, and the refusal that stopped the run."""
    reports: list[IdentityReport] = []
    sent: list[PreparedIdentity] = []

    def requests() -> Iterator[pb.EnrollRequest]:
        for external_id, paths in folders:
            item, images = _prepare(external_id, paths)
            if not images:  # no file could be read: nothing to send
                reports.append(item.report)
                bar.update(1)
                continue
            sent.append(item)
            yield enroll_request(
                args.gallery,
                external_id,
                images,
                allow_multiple_faces=args.allow_multiple_faces,
                allow_duplicate=args.allow_duplicate,
                # Re-running enroll on the same folder adds nothing twice.
                request_id=content_request_id(args.gallery, external_id, images),
            )

    results = client.enroll_each(requests(), in_flight=args.in_flight)
    try:
        for number, result in enumerate(results):
            item = sent[number]  # its request was generated before its result could arrive
            _record(item, result)
            reports.append(item.report)
            bar.update(1)  # a processed identity, not a sent one
            if isinstance(result, grpc.RpcError) and result.code() in FATAL_STATUSES:
                return reports, result
    finally:
        results.close()  # cancels the calls still in flight
    return reports, None


def summary(reports: list[IdentityReport]) -> dict[str, Any]:
    files = [f for r in reports for f in r.files]
    refused = Counter(f.reason for f in files if not f.accepted and f.reason)
    return {
        "identities": len(reports),
        "identities_created": sum(r.created for r in reports),
        "identities_failed": sum(r.error is not None for r in reports),
        "images_accepted": sum(f.accepted for f in files),
        "images_rejected": sum(not f.accepted for f in files),
        "rejections_by_reason": dict(refused.most_common()),
    }


def _print_report(reports: list[IdentityReport], as_json: bool) -> None:
    totals = summary(reports)
    if as_json:
        files = [asdict(f) for r in reports for f in r.files]
        failed = [{"external_id": r.external_id, "error": r.error} for r in reports if r.error]
        print_json({"files": files, "failed": failed, "summary": totals})
        return
    for report in reports:
        if report.error:
            print(f"failed    {report.external_id}  {report.error}")
        for f in report.files:
            if f.accepted:
                print(f"accepted  {f.path}  face {f.face_id}")
            else:
                print(f"refused   {f.path}  {f.reason}: {f.message}")
    print(
        f"{totals['identities']} identities, {totals['identities_created']} created; "
        f"{totals['images_accepted']} images accepted, {totals['images_rejected']} rejected"
    )
    for reason, count in totals["rejections_by_reason"].items():
        print(f"  {reason:<20} {count}")
