"""`facedb models`: list the registry, download into the cache, re-verify cached files,
rewrite a dynamic-int8 recognizer as a batchable float32 graph."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from facedb.models.optimize import GraphRewriteError, optimize_model
from facedb.models.registry import REGISTRY, RegistryEntry, lookup
from facedb.models.spec import ModelSpecError
from facedb.models.store import (
    ModelUnavailableError,
    cached_path,
    download_models,
    is_valid,
    model_dir,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    parser = subparsers.add_parser("models", help="the model registry and cache")
    commands = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    list_parser = commands.add_parser("list", help="every registry model and its cache state")
    list_parser.add_argument("--json", action="store_true", help="machine-readable output")
    list_parser.set_defaults(handler=run_list)

    download = commands.add_parser("download", help="fetch models into the cache")
    download.add_argument("names", nargs="*", metavar="NAME", help="registry names")
    download.add_argument("--all", action="store_true", help="every registry model")
    download.add_argument("--workers", type=int, default=4, help="parallel downloads")
    download.set_defaults(handler=run_download)

    verify = commands.add_parser("verify", help="re-hash every cached model file")
    verify.set_defaults(handler=run_verify)

    optimize = commands.add_parser(
        "optimize",
        help="dynamic-int8 graph -> float32 graph with the same (dequantized) weights",
        description="Write DST: SRC's ConvInteger / MatMulInteger nodes as float Conv / MatMul "
        "with the exact dequantized weights, so faces can be embedded in batches.",
    )
    optimize.add_argument("source", type=Path, metavar="SRC", help="dynamic-int8 .onnx file")
    optimize.add_argument("destination", type=Path, metavar="DST", help="float32 .onnx to write")
    optimize.set_defaults(handler=run_optimize)


def _cache_state(entry: RegistryEntry, *, rehash: bool) -> str:
    """OK (verified), BAD (present, wrong SHA-256) or missing."""
    path = cached_path(entry)
    if not path.is_file():
        return "missing"
    return "OK" if is_valid(entry, path, rehash=rehash) else "BAD"


def _describe(entry: RegistryEntry) -> dict[str, Any]:
    path = cached_path(entry)
    return {
        "name": entry.name,
        "family": entry.family,
        "variant": entry.variant,
        "task": entry.task,
        "embedding_size": entry.embedding_size,
        "options": entry.options,
        "license": entry.license,
        "url": entry.url,
        "sha256": entry.sha256,
        "path": str(path),
        "size_bytes": path.stat().st_size if path.is_file() else None,
        "cache": _cache_state(entry, rehash=False),
    }


def _size_text(row: dict[str, Any]) -> str:
    if row["size_bytes"] is None:
        return "-"
    return f"{row['size_bytes'] / 1e6:.1f} MB"


def run_list(args: argparse.Namespace) -> int:
    rows = [_describe(REGISTRY[name]) for name in sorted(REGISTRY)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"model cache: {model_dir()}")
    header = f"{'NAME':<26} {'FAMILY':<11} {'TASK':<9} {'DIM':>4} {'SIZE':>9}  CACHE"
    print(header)
    for row in rows:
        dim = row["embedding_size"] or "-"
        print(
            f"{row['name']:<26} {row['family']:<11} {row['task']:<9} {dim:>4} "
            f"{_size_text(row):>9}  {row['cache']}"
        )
    return 0


def _selected(args: argparse.Namespace) -> list[RegistryEntry]:
    if args.all:
        return [REGISTRY[name] for name in sorted(REGISTRY)]
    if not args.names:
        raise ModelSpecError("name at least one model, or use --all")
    return [lookup(name) for name in args.names]


def run_download(args: argparse.Namespace) -> int:
    try:
        entries = _selected(args)
        paths = download_models(entries, workers=args.workers)
    except (ModelSpecError, ModelUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for entry, path in zip(entries, paths, strict=True):
        print(f"{entry.name}: {path}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Hash every cached file again (ignoring remembered results); BAD files fail the run."""
    bad = 0
    print(f"model cache: {model_dir()}")
    for name in sorted(REGISTRY):
        state = _cache_state(REGISTRY[name], rehash=True)
        bad += state == "BAD"
        print(f"{name:<26} {state}")
    return 1 if bad else 0


def run_optimize(args: argparse.Namespace) -> int:
    try:
        report = optimize_model(args.source, args.destination)
    except (GraphRewriteError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{report.destination}: {report.rewritten} integer nodes rewritten as float32, "
        f"{report.nodes_before} -> {report.nodes_after} nodes"
    )
    return 0
