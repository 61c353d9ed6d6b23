"""Client commands against a running server: gallery, identify, verify, stats, keys.

Every command takes `--server HOST:PORT` and `--api-key KEY` (or FACEDB_SERVER /
FACEDB_API_KEY), and for TLS `--tls` or `--ca FILE`, plus `--client-cert` / `--client-key`
for mutual TLS. A call the server refuses prints `CODE: message` on one line and exits
with 2 (4 when the server cannot be reached or is overloaded); see facedb.cli.errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from facedb.cli.errors import (
    EXIT_NO_FACE,
    EXIT_NO_MATCH,
    EXIT_OK,
    EXIT_USAGE,
    UserError,
    rpc_error_message,
)
from facedb.client import FaceDBClient
from facedb.v1 import facedb_pb2 as pb

Command = Callable[[FaceDBClient, argparse.Namespace], int]


def connection_options() -> argparse.ArgumentParser:
    """The options every client command shares (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        default=os.environ.get("FACEDB_SERVER", "127.0.0.1:50051"),
        metavar="HOST:PORT",
        help="server address (default: $FACEDB_SERVER or 127.0.0.1:50051)",
    )
    common.add_argument(
        "--api-key",
        default=os.environ.get("FACEDB_API_KEY"),
        metavar="KEY",
        help="API key (default: $FACEDB_API_KEY)",
    )
    common.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="deadline per call"
    )
    common.add_argument("--tls", action="store_true", help="connect over TLS (system CAs)")
    common.add_argument(
        "--ca", default=os.environ.get("FACEDB_CA"), metavar="PEM", help="CA file (implies --tls)"
    )
    common.add_argument(
        "--client-cert",
        default=os.environ.get("FACEDB_CLIENT_CERT"),
        metavar="PEM",
        help="client certificate for mutual TLS (with --client-key)",
    )
    common.add_argument(
        "--client-key",
        default=os.environ.get("FACEDB_CLIENT_KEY"),
        metavar="PEM",
        help="private key of --client-cert",
    )
    return common


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    common = connection_options()
    _gallery_commands(subparsers, common)
    _identify_command(subparsers, common)
    _verify_command(subparsers, common)
    _keys_commands(subparsers, common)
    stats = subparsers.add_parser(
        "stats", parents=[common], help="identities and faces per gallery"
    )
    add_json_option(stats)
    stats.set_defaults(handler=handled(_stats))


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the server's answer as JSON")


def _gallery_commands(subparsers: argparse._SubParsersAction, common: Any) -> None:
    gallery = subparsers.add_parser("gallery", help="create, show, list or delete galleries")
    actions = gallery.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[common], help="create a gallery")
    create.add_argument("name", help="gallery name")
    for name, what in (
        ("identify", "1:N match"),
        ("verify", "1:1 match"),
        ("duplicate", "same face already enrolled under another identity"),
    ):
        create.add_argument(
            f"--{name}-threshold",
            type=float,
            default=0.0,
            metavar="COSINE",
            help=f"cosine similarity for a {what} (default 0: the model's calibrated value)",
        )
    create.add_argument("--no-crops", action="store_true", help="do not store face crops")
    create.add_argument(
        "--store-attributes",
        default="",
        metavar="NAMES",
        help="attributes measured and stored with every enrolled face, comma-separated "
        "(e.g. age,gender; the server must run their models)",
    )
    create.set_defaults(handler=handled(_gallery_create))
    show = actions.add_parser("get", parents=[common], help="one gallery's settings and counts")
    show.add_argument("name", help="gallery name")
    add_json_option(show)
    show.set_defaults(handler=handled(_gallery_get))
    listing = actions.add_parser("list", parents=[common], help="list galleries")
    add_json_option(listing)
    listing.set_defaults(handler=handled(_gallery_list))
    delete = actions.add_parser("delete", parents=[common], help="delete a gallery and its data")
    delete.add_argument("name", help="gallery name")
    delete.set_defaults(handler=handled(_gallery_delete))
    reindex = actions.add_parser(
        "reindex",
        parents=[common],
        help="reindex a gallery on the server (admin), printing progress",
        description="Rebuild the gallery's index, or re-embed its stored crops with another "
        "recognizer (a file on the server) and switch it, while every server keeps "
        "answering from the old index until it has switched. Ctrl-C before the switch "
        "cancels it and changes nothing. No deadline unless --deadline is given.",
    )
    reindex.add_argument("name", help="gallery name")
    reindex.add_argument(
        "--model", default="", help="recognizer spec on the server (registry name or FAMILY:PATH)"
    )
    reindex.add_argument("--index", default="", help="index kind from now on (auto, hnsw, ...)")
    reindex.add_argument("--batch-size", type=int, default=0, help="crops per embedder call")
    reindex.add_argument(
        "--deadline", type=float, metavar="SECONDS", help="bound on the whole run (default none)"
    )
    reindex.set_defaults(handler=handled(_gallery_reindex))


def _identify_command(subparsers: argparse._SubParsersAction, common: Any) -> None:
    identify = subparsers.add_parser(
        "identify",
        parents=[common],
        help="who is in this image? (1:N)",
        description="Search a gallery for the image's largest face (or every face). Exit "
        "code 0: a match, 1: no match, 3: no usable face in the image.",
    )
    identify.add_argument("image", type=Path, help="image file")
    identify.add_argument("--gallery", required=True, help="gallery to search")
    identify.add_argument("--top-k", type=int, default=5, help="candidates per face")
    decision = identify.add_mutually_exclusive_group()
    decision.add_argument(
        "--threshold", type=float, metavar="COSINE", help="match threshold (cosine similarity)"
    )
    decision.add_argument(
        "--target-fpir",
        type=float,
        metavar="RATE",
        help="false-positive identification rate to decide at, e.g. 0.01",
    )
    identify.add_argument("--all-faces", action="store_true", help="search every face found")
    identify.add_argument(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        type=attribute_filter,
        metavar="CONDITION",
        help="only faces whose stored attribute matches: NAME=VALUE, NAME>=NUMBER or "
        "NAME<=NUMBER (e.g. gender=female, age>=30); repeat for several, all must match",
    )
    add_json_option(identify)
    identify.set_defaults(handler=handled(_identify))


def attribute_filter(text: str) -> pb.AttributeFilter:
    """`gender=female`, `age>=30`, `age<=50` → an AttributeFilter (the server checks names)."""
    for operator in (">=", "<="):
        name, found, value = text.partition(operator)
        if found:
            try:
                number = float(value)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{text!r}: {operator} needs a number, e.g. age{operator}30"
                ) from None
            condition = pb.AttributeFilter(name=name.strip())
            if operator == ">=":
                condition.min = number
            else:
                condition.max = number
            return condition
    name, found, value = text.partition("=")
    if not found or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE, NAME>=NUMBER or NAME<=NUMBER, got {text!r}"
        )
    return pb.AttributeFilter(name=name.strip(), equals=value.strip())


def _verify_command(subparsers: argparse._SubParsersAction, common: Any) -> None:
    verify = subparsers.add_parser(
        "verify",
        parents=[common],
        help="same person? (1:1, image against image or an enrolled identity)",
        description="Compare IMAGE with REFERENCE, or with an enrolled identity "
        "(--gallery G --identity ID). Exit code 0: same person, 1: different people, "
        "3: no usable face in an image.",
    )
    verify.add_argument("image", type=Path, help="probe image file")
    verify.add_argument("reference", type=Path, nargs="?", help="reference image file")
    verify.add_argument(
        "--identity", metavar="ID", help="external id of an enrolled identity (with --gallery)"
    )
    verify.add_argument(
        "--gallery", default="", help="gallery of --identity; otherwise its thresholds apply"
    )
    decision = verify.add_mutually_exclusive_group()
    decision.add_argument(
        "--threshold", type=float, metavar="COSINE", help="match threshold (cosine similarity)"
    )
    decision.add_argument(
        "--target-far",
        type=float,
        metavar="RATE",
        help="false-accept rate to decide at, e.g. 0.001",
    )
    add_json_option(verify)
    verify.set_defaults(handler=handled(_verify))


def _keys_commands(subparsers: argparse._SubParsersAction, common: Any) -> None:
    keys = subparsers.add_parser("keys", help="create, list, revoke or rotate API keys (admin)")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[common], help="a new key; prints its secret")
    create.add_argument(
        "--role", required=True, choices=("admin", "enroll", "search"), help="what the key may do"
    )
    create.add_argument("--gallery", action="append", dest="galleries", help="repeat; default *")
    create.add_argument("--name", default="", help="a label, e.g. who holds the key")
    crops = create.add_mutually_exclusive_group()
    crops.add_argument(
        "--view-crops",
        action="store_true",
        default=None,
        dest="view_crops",
        help="may see stored face crops (default: admin and enroll keys)",
    )
    crops.add_argument(
        "--no-view-crops", action="store_false", dest="view_crops", help="may not see crops"
    )
    create.add_argument("--rate-limit", type=float, default=0.0, help="requests/s; 0: none")
    create.add_argument("--expires-in", type=int, default=0, help="seconds; 0: never")
    add_json_option(create)
    create.set_defaults(handler=handled(_keys_create))
    listing = actions.add_parser("list", parents=[common], help="managed keys (not bootstrap)")
    listing.add_argument("--all", action="store_true", help="revoked keys too")
    add_json_option(listing)
    listing.set_defaults(handler=handled(_keys_list))
    for action, text in (("revoke", "revoke a key"), ("rotate", "a new secret for a key")):
        command = actions.add_parser(action, parents=[common], help=text)
        command.add_argument("key_id", help="the key's id (facedb keys list)")
        add_json_option(command)
        command.set_defaults(handler=handled(_keys_revoke if action == "revoke" else _keys_rotate))


# ------------------------------------------------------------------------ handlers


def handled(command: Command) -> Callable[[argparse.Namespace], int]:
    """Open a client for the command; a refused call is one line `CODE: message`."""

    def run(args: argparse.Namespace) -> int:
        try:
            client = FaceDBClient(
                args.server,
                api_key=args.api_key,
                timeout=args.timeout,
                tls=args.tls,
                ca=args.ca,
                client_cert=args.client_cert,
                client_key=args.client_key,
            )
        except (OSError, ValueError) as error:
            print(f"facedb {args.command}: {error}", file=sys.stderr)
            return EXIT_USAGE
        with client:
            try:
                return command(client, args)
            except grpc.RpcError as error:
                message, code = rpc_error_message(error, args.server)
                print(f"facedb {args.command}: {message}", file=sys.stderr)
                return code

    return run


def message_dict(message: Any) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def print_json(value: Any) -> None:
    data = value if isinstance(value, dict | list) else message_dict(value)
    print(json.dumps(data, indent=2))


def _gallery_create(client: FaceDBClient, args: argparse.Namespace) -> int:
    gallery = client.create_gallery(
        args.name,
        identify_threshold=args.identify_threshold,
        verify_threshold=args.verify_threshold,
        duplicate_threshold=args.duplicate_threshold,
        store_crops=not args.no_crops,
        stored_attributes=[n.strip() for n in args.store_attributes.split(",") if n.strip()],
    )
    print(f"created gallery {gallery.name} ({gallery.model.name}, dim {gallery.model.dim})")
    return EXIT_OK


def _gallery_line(g: pb.Gallery) -> str:
    return (
        f"{g.name}\t{g.identity_count} identities\t{g.face_count} faces\t{g.model.name}"
        f"\tidentify>={g.thresholds.identify:.3f}\tverify>={g.thresholds.verify:.3f}"
    )


def _gallery_get(client: FaceDBClient, args: argparse.Namespace) -> int:
    gallery = client.get_gallery(args.name)
    if args.json:
        print_json(gallery)
    else:
        print(_gallery_line(gallery))
    return EXIT_OK


def _gallery_list(client: FaceDBClient, args: argparse.Namespace) -> int:
    galleries = client.list_galleries()
    if args.json:
        print_json(pb.ListGalleriesResponse(galleries=galleries))
        return EXIT_OK
    for g in galleries:
        print(_gallery_line(g))
    return EXIT_OK


def _gallery_delete(client: FaceDBClient, args: argparse.Namespace) -> int:
    client.delete_gallery(args.name)
    print(f"deleted gallery {args.name}")
    return EXIT_OK


def _gallery_reindex(client: FaceDBClient, args: argparse.Namespace) -> int:
    names = pb.ReindexProgress.Phase.Name
    for update in client.reindex(
        args.name,
        args.model,
        index_kind=args.index,
        batch_size=args.batch_size,
        timeout=args.deadline,
    ):
        print(f"{names(update.phase).lower()}\t{update.faces_done}/{update.faces_total} faces")
        if update.phase == pb.ReindexProgress.SWITCHED:
            model = update.gallery.model
            print(f"gallery {update.gallery.name}: model {model.name} (dim {model.dim})")
    return EXIT_OK


def identify_exit_code(response: pb.IdentifyResponse) -> int:
    """0 a face matched, 1 faces were searched without a match, 3 no face could be searched."""
    searched = [face for face in response.faces if not face.HasField("rejection")]
    if any(face.candidates for face in searched):
        return EXIT_OK
    return EXIT_NO_MATCH if searched else EXIT_NO_FACE


def _identify(client: FaceDBClient, args: argparse.Namespace) -> int:
    response = client.identify(
        args.gallery,
        args.image,
        top_k=args.top_k,
        threshold=args.threshold,
        target_fpir=args.target_fpir,
        all_faces=args.all_faces,
        filters=args.filters,
    )
    if args.json:
        print_json(response)
        return identify_exit_code(response)
    if not response.faces:
        print("no face found")
    for n, face in enumerate(response.faces, 1):
        b = face.box
        where = f"face {n} at ({b.x1:.0f},{b.y1:.0f})-({b.x2:.0f},{b.y2:.0f})"
        if face.HasField("rejection"):
            reason = pb.Reason.Name(face.rejection.reason)
            print(f"{where}: refused {reason}: {face.rejection.message}")
        elif not face.candidates:
            print(f"{where}: no match (threshold {response.threshold:.3f})")
        for c in face.candidates:
            print(f"{where}: {c.external_id}\t{c.score:.3f}\t{c.display_name}")
    return identify_exit_code(response)


def verify_exit_code(response: pb.VerifyResponse) -> int:
    if response.HasField("rejection"):
        return EXIT_NO_FACE
    return EXIT_OK if response.match else EXIT_NO_MATCH


def _verify_reference(args: argparse.Namespace) -> dict[str, Any]:
    if (args.reference is None) == (args.identity is None):
        raise UserError("give either a REFERENCE image or --identity ID (see --help)")
    if args.identity is not None and not args.gallery:
        raise UserError("--identity needs --gallery (the identity's gallery)")
    if args.identity is not None:
        return {"gallery": args.gallery, "external_id": args.identity}
    return {"gallery": args.gallery, "reference_image": args.reference}


def _verify(client: FaceDBClient, args: argparse.Namespace) -> int:
    reference = _verify_reference(args)
    response = client.verify(
        args.image, threshold=args.threshold, target_far=args.target_far, **reference
    )
    if args.json:
        print_json(response)
    elif response.HasField("rejection"):
        reason = pb.Reason.Name(response.rejection.reason)
        print(f"cannot verify: {reason}: {response.rejection.message}")
    else:
        verdict = "same person" if response.match else "different people"
        print(f"{verdict}: score {response.score:.3f}, threshold {response.threshold:.3f}")
    return verify_exit_code(response)


def _stats(client: FaceDBClient, args: argparse.Namespace) -> int:
    stats = client.stats()
    if args.json:
        print_json(stats)
        return EXIT_OK
    print(f"model {stats.loaded_model.name} (dim {stats.loaded_model.dim})")
    for g in stats.galleries:
        print(f"{g.name}\t{g.identities} identities\t{g.faces} faces")
    print(f"total\t{stats.identities} identities\t{stats.faces} faces")
    return EXIT_OK


# ------------------------------------------------------------------------ API keys


def _print_issued(issued: pb.IssuedApiKey, args: argparse.Namespace) -> None:
    if args.json:
        print_json(issued)
        return
    k = issued.api_key
    print(f"key {k.key_id} ({k.role}; galleries {','.join(k.galleries)}): {issued.key}")
    print("store the secret now: it is not shown again", file=sys.stderr)


def _keys_create(client: FaceDBClient, args: argparse.Namespace) -> int:
    issued = client.create_api_key(
        args.role,
        args.galleries or ["*"],
        name=args.name,
        view_crops=args.view_crops,
        rate_limit=args.rate_limit,
        expires_in_seconds=args.expires_in,
    )
    _print_issued(issued, args)
    return EXIT_OK


def _keys_list(client: FaceDBClient, args: argparse.Namespace) -> int:
    keys = client.list_api_keys(include_revoked=args.all)
    if args.json:
        print_json(pb.ListApiKeysResponse(api_keys=keys))
        return EXIT_OK
    for k in keys:
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        print(
            f"{k.key_id}\t{k.role}\t{','.join(k.galleries)}\t{k.name or '-'}\t{state}"
            f"\tlast used {k.last_used_at or 'never'}\texpires {k.expires_at or 'never'}"
        )
    return EXIT_OK


def _keys_revoke(client: FaceDBClient, args: argparse.Namespace) -> int:
    key = client.revoke_api_key(args.key_id)
    if args.json:
        print_json(key)
    else:
        print(f"revoked {key.key_id} at {key.revoked_at}")
    return EXIT_OK


def _keys_rotate(client: FaceDBClient, args: argparse.Namespace) -> int:
    _print_issued(client.rotate_api_key(args.key_id), args)
    return EXIT_OK
