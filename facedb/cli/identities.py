"""`facedb identity list|get|update|delete` and `facedb face delete` against a server.

`identity delete` is the right to be forgotten from the command line: the identity, its
faces, crops and embeddings are erased.
"""

from __future__ import annotations

import argparse

from facedb.cli.client import add_json_option, connection_options, handled, print_json
from facedb.cli.errors import EXIT_OK, UserError
from facedb.client import FaceDBClient
from facedb.v1 import facedb_pb2 as pb


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    common = connection_options()
    identity = subparsers.add_parser("identity", help="list, show, update or delete identities")
    actions = identity.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", parents=[common], help="every identity of a gallery")
    _gallery_option(listing)
    listing.add_argument(
        "--page-size", type=int, default=100, metavar="N", help="identities per call"
    )
    add_json_option(listing)
    listing.set_defaults(handler=handled(_list))

    get = actions.add_parser("get", parents=[common], help="one identity and its face ids")
    _identity_arguments(get)
    add_json_option(get)
    get.set_defaults(handler=handled(_get))

    update = actions.add_parser(
        "update", parents=[common], help="change an identity's display name or metadata"
    )
    _identity_arguments(update)
    update.add_argument("--display-name", metavar="NAME", help="new display name")
    update.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata entry to set (repeat for several)",
    )
    update.add_argument(
        "--replace-metadata",
        action="store_true",
        help="the --set entries replace all metadata instead of being merged into it",
    )
    add_json_option(update)
    update.set_defaults(handler=handled(_update))

    delete = actions.add_parser(
        "delete", parents=[common], help="erase an identity with all its faces"
    )
    _identity_arguments(delete)
    delete.set_defaults(handler=handled(_delete))

    face = subparsers.add_parser("face", help="delete single enrolled faces")
    face_actions = face.add_subparsers(dest="action", required=True, metavar="ACTION")
    face_delete = face_actions.add_parser("delete", parents=[common], help="erase one face")
    face_delete.add_argument("face_id", type=int, metavar="FACE_ID", help="the face's id")
    _gallery_option(face_delete)
    face_delete.set_defaults(handler=handled(_delete_face))


def _gallery_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gallery", required=True, help="gallery name")


def _identity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("external_id", metavar="ID", help="the identity's external id")
    _gallery_option(parser)


def _metadata(entries: list[str]) -> dict[str, str]:
    metadata = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {entry!r}")
        metadata[key] = value
    return metadata


def _identity_text(identity: pb.Identity) -> str:
    faces = ",".join(str(f) for f in identity.face_ids) or "-"
    metadata = " ".join(f"{k}={v}" for k, v in sorted(identity.metadata.items()))
    return f"{identity.external_id}\t{identity.display_name}\tfaces {faces}\t{metadata}".rstrip()


def _print_identity(identity: pb.Identity, as_json: bool) -> None:
    if as_json:
        print_json(identity)
    else:
        print(_identity_text(identity))


def _list(client: FaceDBClient, args: argparse.Namespace) -> int:
    identities = client.iter_identities(args.gallery, page_size=args.page_size)
    if args.json:
        print_json(pb.ListIdentitiesResponse(identities=list(identities)))
        return EXIT_OK
    for identity in identities:
        print(_identity_text(identity))
    return EXIT_OK


def _get(client: FaceDBClient, args: argparse.Namespace) -> int:
    _print_identity(client.get_identity(args.gallery, args.external_id), args.json)
    return EXIT_OK


def _update(client: FaceDBClient, args: argparse.Namespace) -> int:
    metadata = _metadata(args.set)
    if args.display_name is None and not metadata and not args.replace_metadata:
        raise UserError("nothing to update: give --display-name and/or --set KEY=VALUE")
    identity = client.update_identity(
        args.gallery,
        args.external_id,
        display_name=args.display_name,
        metadata=metadata,
        replace_metadata=args.replace_metadata,
    )
    _print_identity(identity, args.json)
    return EXIT_OK


def _delete(client: FaceDBClient, args: argparse.Namespace) -> int:
    removed = client.delete_identity(args.gallery, args.external_id)
    print(f"deleted identity {args.external_id} ({removed} faces erased)")
    return EXIT_OK


def _delete_face(client: FaceDBClient, args: argparse.Namespace) -> int:
    client.delete_face(args.gallery, args.face_id)
    print(f"deleted face {args.face_id}")
    return EXIT_OK
