"""Client commands against a running server: gallery, enroll, identify, verify, stats.

Every command takes `--server HOST:PORT` and `--api-key KEY` (or FACEDB_SERVER /
FACEDB_API_KEY), and for TLS `--tls` or `--ca FILE`, plus `--client-cert` / `--client-key`
for mutual TLS. Errors print the server's status code and message and exit with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from tqdm import tqdm

from facedb.client import FaceDBClient, enroll_request
from facedb.v1 import facedb_pb2 as pb

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".avif", ".bmp"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=os.environ.get("FACEDB_SERVER", "127.0.0.1:50051"))
    common.add_argument("--api-key", default=os.environ.get("FACEDB_API_KEY"))
    common.add_argument("--timeout", type=float, default=60.0, help="seconds per call")
    common.add_argument("--tls", action="store_true", help="connect over TLS (system CAs)")
    common.add_argument("--ca", default=os.environ.get("FACEDB_CA"), help="PEM CA (implies --tls)")
    common.add_argument("--client-cert", default=os.environ.get("FACEDB_CLIENT_CERT"))
    common.add_argument("--client-key", default=os.environ.get("FACEDB_CLIENT_KEY"))
    _gallery_commands(subparsers, common)
    _enroll_command(subparsers, common)
    _identify_command(subparsers, common)
    _verify_command(subparsers, common)
    _keys_commands(subparsers, common)
    stats = subparsers.add_parser("stats", parents=[common], help="identities and faces")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=_handled(_stats))


def _gallery_commands(subparsers: argparse._SubParsersAction, common: Any) -> None:
    gallery = subparsers.add_parser("gallery", help="create, list or delete galleries")
    actions = gallery.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[common], help="create a gallery")
    create.add_argument("name")
    create.add_argument("--identify-threshold", type=float, default=0.0)
    create.add_argument("--verify-threshold", type=float, default=0.0)
    create.add_argument("--duplicate-threshold", type=float, default=0.0)
    create.add_argument("--no-crops", action="store_true", help="do not store face crops")
    create.set_defaults(handler=_handled(_gallery_create))
    listing = actions.add_parser("list", parents=[common], help="list galleries")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_handled(_gallery_list))
    delete = actions.add_parser("delete", parents=[common], help="delete a gallery and its data")
    delete.add_argument("name")
    delete.set_defaults(handler=_handled(_gallery_delete))


def _enroll_command(subparsers: argparse._SubParsersAction, common: Any) -> None:
    enroll = subparsers.add_parser(
        "enroll",
        parents=[common],
        help="enroll a folder of identities",
        description="ROOT holds one folder per identity; the folder name is the external id.",
    )
    enroll.add_argument("root", type=Path)
    enroll.add_argument("--gallery", required=True)
    enroll.add_argument("--allow-multiple-faces", action="store_true")
    enroll.add_argument("--allow-duplicate", action="store_true")
    enroll.add_argument("--json", action="store_true", help="print the summary as JSON")
    enroll.set_defaults(handler=_handled(_enroll))


def _identify_command(subparsers: argparse._SubParsersAction, common: Any) -> None:
    identify = subparsers.add_parser("identify", parents=[common], help="who is in this image?")
    identify.add_argument("image", type=Path)
    identify.add_argument("--gallery", required=True)
    identify.add_argument("--top-k", type=int, default=5)
    identify.add_argument("--threshold", type=float)
    identify.add_argument("--all-faces", action="store_true")
    identify.add_argument("--json", action="store_true")
    identify.set_defaults(handler=_handled(_identify))


def _verify_command(subparsers: argparse._SubParsersAction, common: Any) -> None:
    verify = subparsers.add_parser("verify", parents=[common], help="same person in both images?")
    verify.add_argument("image_a", type=Path)
    verify.add_argument("image_b", type=Path)
    verify.add_argument("--threshold", type=float)
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=_handled(_verify))


def _keys_commands(subparsers: argparse._SubParsersAction, common: Any) -> None:
    keys = subparsers.add_parser("keys", help="create, list, revoke or rotate API keys (admin)")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[common], help="a new key; prints its secret")
    create.add_argument("--role", required=True, choices=("admin", "enroll", "search"))
    create.add_argument("--gallery", action="append", dest="galleries", help="repeat; default *")
    create.add_argument("--name", default="", help="a label, e.g. who holds the key")
    crops = create.add_mutually_exclusive_group()
    crops.add_argument("--view-crops", action="store_true", default=None, dest="view_crops")
    crops.add_argument("--no-view-crops", action="store_false", dest="view_crops")
    create.add_argument("--rate-limit", type=float, default=0.0, help="requests/s; 0: none")
    create.add_argument("--expires-in", type=int, default=0, help="seconds; 0: never")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=_handled(_keys_create))
    listing = actions.add_parser("list", parents=[common], help="managed keys (not bootstrap)")
    listing.add_argument("--all", action="store_true", help="revoked keys too")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_handled(_keys_list))
    for action, text in (("revoke", "revoke a key"), ("rotate", "a new secret for a key")):
        command = actions.add_parser(action, parents=[common], help=text)
        command.add_argument("key_id")
        command.add_argument("--json", action="store_true")
        command.set_defaults(handler=_handled(_keys_revoke if action == "revoke" else _keys_rotate))


# ------------------------------------------------------------------------ handlers


def _handled(command: Callable[[FaceDBClient, argparse.Namespace], int]) -> Callable[..., int]:
    """Open a client for the command; print RPC errors as `CODE: message`."""

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
            print(f"error: {error}", file=sys.stderr)
            return 2
        with client:
            try:
                return command(client, args)
            except grpc.RpcError as error:
                print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
                return 1

    return run


def _print_json(message: Any) -> None:
    print(json.dumps(MessageToDict(message, preserving_proto_field_name=True), indent=2))


def _gallery_create(client: FaceDBClient, args: argparse.Namespace) -> int:
    gallery = client.create_gallery(
        args.name,
        identify_threshold=args.identify_threshold,
        verify_threshold=args.verify_threshold,
        duplicate_threshold=args.duplicate_threshold,
        store_crops=not args.no_crops,
    )
    print(f"created gallery {gallery.name} ({gallery.model.name}, dim {gallery.model.dim})")
    return 0


def _gallery_list(client: FaceDBClient, args: argparse.Namespace) -> int:
    galleries = client.list_galleries()
    if args.json:
        _print_json(pb.ListGalleriesResponse(galleries=galleries))
        return 0
    for g in galleries:
        print(
            f"{g.name}\t{g.identity_count} identities\t{g.face_count} faces\t{g.model.name}"
            f"\tidentify>={g.thresholds.identify:.3f}\tverify>={g.thresholds.verify:.3f}"
        )
    return 0


def _gallery_delete(client: FaceDBClient, args: argparse.Namespace) -> int:
    client.delete_gallery(args.name)
    print(f"deleted gallery {args.name}")
    return 0


def identity_folders(root: Path) -> list[tuple[str, list[Path]]]:
    """(external id, image files) for every sub-folder of `root` holding images."""
    if not root.is_dir():
        raise SystemExit(f"error: {root} is not a directory")
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            found.append((folder.name, images))
    return found


def _enroll(client: FaceDBClient, args: argparse.Namespace) -> int:
    folders = identity_folders(args.root)
    bar = tqdm(total=len(folders), unit="identity", desc="enroll", file=sys.stderr)

    def requests() -> Iterator[pb.EnrollRequest]:
        for external_id, images in folders:
            yield enroll_request(
                args.gallery,
                external_id,
                images,
                allow_multiple_faces=args.allow_multiple_faces,
                allow_duplicate=args.allow_duplicate,
            )
            bar.update(1)

    try:
        response = client.enroll_stream(requests())
    finally:
        bar.close()
    if args.json:
        _print_json(response.summary)
    else:
        _print_summary(response)
    return 0 if response.summary.items_failed == 0 else 1


def _print_summary(response: pb.EnrollStreamResponse) -> None:
    s = response.summary
    print(
        f"{s.items} identities sent, {s.identities_created} created; "
        f"{s.images_accepted} images accepted, {s.images_rejected} rejected"
    )
    for reason, count in sorted(s.rejections_by_reason.items(), key=lambda kv: -kv[1]):
        print(f"  {reason:<20} {count}")
    for item in response.items:
        if item.error_code:
            code = next(c.name for c in grpc.StatusCode if c.value[0] == item.error_code)
            print(f"  failed {item.external_id}: {code}: {item.error_message}")


def _identify(client: FaceDBClient, args: argparse.Namespace) -> int:
    response = client.identify(
        args.gallery,
        args.image,
        top_k=args.top_k,
        threshold=args.threshold,
        all_faces=args.all_faces,
    )
    if args.json:
        _print_json(response)
        return 0
    if not response.faces:
        print("no face found")
    for n, face in enumerate(response.faces, 1):
        b = face.box
        where = f"face {n} at ({b.x1:.0f},{b.y1:.0f})-({b.x2:.0f},{b.y2:.0f})"
        if face.HasField("rejection"):
            print(f"{where}: refused: {face.rejection.message}")
        elif not face.candidates:
            print(f"{where}: no match (threshold {response.threshold:.3f})")
        for c in face.candidates:
            print(f"{where}: {c.external_id}\t{c.score:.3f}\t{c.display_name}")
    return 0


def _verify(client: FaceDBClient, args: argparse.Namespace) -> int:
    response = client.verify(args.image_a, args.image_b, threshold=args.threshold)
    if args.json:
        _print_json(response)
        return 0
    if response.HasField("rejection"):
        print(f"cannot verify: {response.rejection.message}")
        return 0
    verdict = "same person" if response.match else "different people"
    print(f"{verdict}: score {response.score:.3f}, threshold {response.threshold:.3f}")
    return 0


def _stats(client: FaceDBClient, args: argparse.Namespace) -> int:
    stats = client.stats()
    if args.json:
        _print_json(stats)
        return 0
    print(f"model {stats.loaded_model.name} (dim {stats.loaded_model.dim})")
    for g in stats.galleries:
        print(f"{g.name}\t{g.identities} identities\t{g.faces} faces")
    print(f"total\t{stats.identities} identities\t{stats.faces} faces")
    return 0


def _print_issued(issued: pb.IssuedApiKey, args: argparse.Namespace) -> None:
    if args.json:
        _print_json(issued)
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
    return 0


def _keys_list(client: FaceDBClient, args: argparse.Namespace) -> int:
    keys = client.list_api_keys(include_revoked=args.all)
    if args.json:
        _print_json(pb.ListApiKeysResponse(api_keys=keys))
        return 0
    for k in keys:
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        print(
            f"{k.key_id}\t{k.role}\t{','.join(k.galleries)}\t{k.name or '-'}\t{state}"
            f"\tlast used {k.last_used_at or 'never'}\texpires {k.expires_at or 'never'}"
        )
    return 0


def _keys_revoke(client: FaceDBClient, args: argparse.Namespace) -> int:
    key = client.revoke_api_key(args.key_id)
    if args.json:
        _print_json(key)
    else:
        print(f"revoked {key.key_id} at {key.revoked_at}")
    return 0


def _keys_rotate(client: FaceDBClient, args: argparse.Namespace) -> int:
    _print_issued(client.rotate_api_key(args.key_id), args)
    return 0
